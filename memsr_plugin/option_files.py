"""Options files derived from the user's own, for the networks MemSR makes: the plain form of a converted teacher
(``python -m memsr_plugin.convert``) and an initialised student (``python -m memsr_plugin.init``).

A BasicSR options YAML stays a YAML, an MMagic config stays a python config (mmengine's pretty text, bases
merged in); only the listed entries change. Written atomically, so a refused change leaves no file behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from effsr_core.checkpoints import atomic_write
from effsr_core.networks import read_options


def toolbox_of(path: str | Path) -> str:
    """'basicsr' or 'mmagic', from what the options file is (errors as ``read_options``)."""
    return read_options(path)[0]


def generator_options(path: str | Path) -> dict:
    """The network an options file describes: BasicSR's ``network_g`` / MMagic's ``model.generator``."""
    toolbox, options = read_options(path)
    generator = options['network_g'] if toolbox == 'basicsr' else options['model']['generator']
    return _plain(generator)


def _plain(value: Any) -> Any:
    """mmengine ConfigDicts and tuples as the plain dicts and lists a YAML can hold."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class OptionsDumper(yaml.SafeDumper):
    """The YAML style of the options MemSR writes (also scripts/make_memsr_options.py's): lists of numbers and
    words on one line, as people write per-layer widths."""


def _represent_list(dumper: yaml.SafeDumper, values: list):
    flow = all(isinstance(value, (int, float, str, bool)) or value is None for value in values)
    return dumper.represent_sequence('tag:yaml.org,2002:seq', values, flow_style=flow)


OptionsDumper.add_representer(list, _represent_list)


def _set(options: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split('.')
    for key in parents:
        options = options.setdefault(key, {})
    options[last] = value


def write_derived_options(template: str | Path, output: str | Path, name: str,
                          basicsr: Mapping[str, Any], mmagic: Mapping[str, Any]) -> Path:
    """Write ``template`` with the experiment renamed to ``name`` and the dotted entries of its toolbox replaced.

    Args:
        template: A BasicSR options YAML or an MMagic python config.
        output: The folder to write ``<name>.yml`` / ``<name>.py`` into.
        name: BasicSR's ``name``; MMagic's ``experiment_name`` (and ``work_dir``, ``./work_dirs/<name>``).
        basicsr, mmagic: ``{'a.b': value}`` for each toolbox; a value replaces the entry whole.

    Returns:
        The path written.
    """
    toolbox, options = read_options(template)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if toolbox == 'basicsr':
        options = dict(options, name=name)
        for dotted, value in basicsr.items():
            _set(options, dotted, _plain(value))
        path = output / f'{name}.yml'
        with atomic_write(path, 'w') as stream:
            stream.write(f'# Derived from {template}\n')
            yaml.dump(options, stream, Dumper=OptionsDumper, sort_keys=False)
        return path
    options = _plain(options.to_dict())
    options.update(experiment_name=name, work_dir=f'./work_dirs/{name}')
    for dotted, value in mmagic.items():
        _set(options, dotted, _plain(value))
    from effsr_core.mmagic.build import config_text

    path = output / f'{name}.py'
    text = config_text(options)
    with atomic_write(path, 'w') as stream:
        stream.write(f'# Derived from {template}\n{text}')
    return path
