"""Map BasicSR ``BasicVSR`` and MMagic ``BasicVSRNet`` state dicts onto ``SSLBasicVSR`` keys (in place).

BasicSR:  ``<b>_trunk.main.0.*`` (input conv), ``<b>_trunk.main.2.<j>.conv{1,2}.*``, ``upconv1``, ``upconv2``,
          ``spynet.basic_module.<l>.basic_module.<0,2,4,6,8>.*``.
MMagic:   ``<b>_resblocks.main.0.*``, ``<b>_resblocks.main.2.<j>.conv{1,2}.*``, ``upsample{1,2}.upsample_conv.*``,
          ``spynet.basic_module.<l>.basic_module.<0..4>.conv.*``.
The other names (fusion, conv_hr, conv_last, spynet mean/std) are shared. Missing scaling factors are set to 1.
"""
from __future__ import annotations

import re

import torch

from ssl_plugin.pruning.plan import encode_state

_RULES = (
    # (source pattern, replacement); applied to the key without the module prefix
    (re.compile(r'^(backward|forward)_(?:trunk|resblocks)\.main\.0\.'), r'\1_trunk.conv_in.'),
    (re.compile(r'^(backward|forward)_(?:trunk|resblocks)\.main\.2\.(\d+)\.'), r'\1_trunk.blocks.\2.'),
    (re.compile(r'^upsample([12])\.upsample_conv\.'), r'upconv\1.'),
)
_MMAGIC_SPYNET = re.compile(r'^spynet\.basic_module\.(\d+)\.basic_module\.(\d)\.conv\.')
_FOREIGN_MARKERS = ('forward_trunk.main.0.weight', 'forward_resblocks.main.0.weight')
EXTRA_STATE = '_extra_state'


def is_foreign(state_dict, prefix: str = '') -> bool:
    """True for a BasicSR / MMagic BasicVSR state dict (under ``prefix``)."""
    return any(prefix + marker in state_dict for marker in _FOREIGN_MARKERS)


def _rename(key: str) -> str:
    for pattern, replacement in _RULES:
        key = pattern.sub(replacement, key)
    spynet = _MMAGIC_SPYNET.match(key)
    if spynet:
        level, layer = spynet.groups()
        key = f'spynet.basic_module.{level}.basic_module.{2 * int(layer)}.' + key[spynet.end():]
    return key


IGNORED_SUFFIX = '.ignore'


def adapt_in_place(state_dict, prefix: str, model) -> None:
    """Rename foreign keys under ``prefix`` and add the factors (ones) and plan (none) a dense model expects.

    Keys that BasicSR's non-strict loader renamed ``<key>.ignore`` because their shape differed from the network
    built from the options (a compact checkpoint loaded into a dense network) are restored: the network is rebuilt
    from the checkpoint's plan before the weights are copied, so the shapes match.
    """
    for key in [k for k in state_dict if k.startswith(prefix) and k.endswith(IGNORED_SUFFIX)]:
        state_dict[key[:-len(IGNORED_SUFFIX)]] = state_dict.pop(key)
    if not is_foreign(state_dict, prefix):
        return
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new_key = prefix + _rename(key[len(prefix):])
        if new_key != key:
            state_dict[new_key] = state_dict.pop(key)
    state_dict[prefix + EXTRA_STATE] = encode_state({'plan': None, 'pending_plan': None})
    for name, size in model.factor_sizes().items():
        state_dict.setdefault(prefix + name, torch.ones(size))
