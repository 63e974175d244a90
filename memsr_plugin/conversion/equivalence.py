"""How close a converted plain network is to its original: the relative error of the outputs, in float64 (must be
at rounding level) and in float32 (bounded in terms of the carrying constant ``C``), on the same inputs."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from memsr_plugin.archs import PlainConvSR

#: float64 relative error below which a conversion counts as exact.
FLOAT64_TOLERANCE = 1e-9
#: float32: a value carried through a ReLU is stored as ``x + C`` and rounds at ``C * 2^-24``, i.e. at
#: ``C * 2^-24 / s`` relative to the image when the network works on the image times ``s`` (its input
#: normalisation), once per layer it is carried through. Measured output error above the original's own float32
#: error (BasicSR's EDSR, s = 255, and MMagic's EDSRNet, s = 1 / std; 8x2 and 16x4, x2 and x4, C 1e3 and 1e5, both
#: forms): at most 1.7 ``C * 2^-24 / s`` per conv layer of the plain network; the bound allows 4.
FLOAT32_ERROR_PER_C_AND_LAYER = 4 * 2 ** -24


def relative_error(output: Tensor, reference: Tensor) -> float:
    """Largest absolute difference over the largest absolute reference value (borders included)."""
    return ((output.double() - reference.double()).abs().max() / reference.double().abs().max()).item()


def feature_scale(net: nn.Module) -> float:
    """How much larger than the image the values inside ``net`` are: the smallest factor of its input
    normalisation (BasicSR EDSR's ``img_range`` 255, EDSRNet's ``1 / std``), 1 without one."""
    from memsr_plugin.conversion.graph import Affine, describe_network

    first = describe_network(net).nodes[0]
    return float(first.scale.abs().min()) if isinstance(first, Affine) else 1.0


def float32_bound(offset: float, original_error: float, layers: int, scale: float = 1.0) -> float:
    """The float32 error (relative to the largest output value) that a conversion with carrying constant
    ``offset`` into ``layers`` conv layers may have: the original's own plus
    ``FLOAT32_ERROR_PER_C_AND_LAYER * layers * offset / scale``."""
    return original_error + FLOAT32_ERROR_PER_C_AND_LAYER * layers * offset / scale


@dataclass
class Equivalence:
    """The measured errors of one conversion on one input batch."""
    float64: float  # plain vs original, both in float64
    float32: float  # plain vs original in float64, the plain network run in float32
    original_float32: float  # the original's own float32 error (the floor)
    scale: float  # feature_scale(original)
    layers: int  # conv layers of the plain network
    bound: float  # float32_bound(offset, original_float32, layers, scale)

    @property
    def exact(self) -> bool:
        return self.float64 < FLOAT64_TOLERANCE and self.float32 <= self.bound

    def describe(self) -> str:
        return (f'float64 relative error {self.float64:.2e} (must be < {FLOAT64_TOLERANCE:.0e}); float32 '
                f'{self.float32:.2e} (bound {self.bound:.2e} = the original\'s own float32 error '
                f'{self.original_float32:.2e} + {FLOAT32_ERROR_PER_C_AND_LAYER / 2 ** -24:g} x {self.layers} layers '
                f'x C 2^-24 / s, s = {self.scale:g} from the input normalisation)')


def measure_equivalence(original: nn.Module, plain64: PlainConvSR, plain32: PlainConvSR, inputs: Tensor,
                        offset: float) -> Equivalence:
    """Compare ``plain64`` / ``plain32`` (the conversion in float64 / float32) with ``original`` on ``inputs``.

    ``original`` is copied, not changed: its float64 and float32 copies give the reference and the floor.
    """
    import copy

    scale = feature_scale(original)
    original64 = copy.deepcopy(original).double().eval()
    original32 = copy.deepcopy(original).float().eval()
    with torch.no_grad():
        reference = original64(inputs.double())
        floor = relative_error(original32(inputs.float()), reference)
        return Equivalence(float64=relative_error(plain64.eval()(inputs.double()), reference),
                           float32=relative_error(plain32.eval()(inputs.float()), reference),
                           original_float32=floor, scale=scale, layers=len(plain32.widths),
                           bound=float32_bound(offset, floor, len(plain32.widths), scale))
