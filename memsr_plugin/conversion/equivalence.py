"""How close a converted plain network is to its original: the relative error of the outputs, in float64 (must be
at rounding level) and in float32 (bounded in terms of the carrying constant ``C``), on the same inputs."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: float64 relative error below which a conversion counts as exact.
FLOAT64_TOLERANCE = 1e-9
#: float32: a value carried through a ReLU is stored as ``x + C`` and rounds at ``C * 2^-24``; on the toolboxes'
#: EDSRs the measured error above the original's own float32 error stays below this many ``C * 2^-24``.
FLOAT32_ERROR_PER_C = 0.1 * 2 ** -24


def relative_error(output: Tensor, reference: Tensor) -> float:
    """Largest absolute difference over the largest absolute reference value (borders included)."""
    return ((output.double() - reference.double()).abs().max() / reference.double().abs().max()).item()


def float32_bound(offset: float, original_error: float) -> float:
    """The float32 error a conversion with carrying constant ``offset`` may add to the original's own."""
    return original_error + FLOAT32_ERROR_PER_C * offset


@dataclass
class Equivalence:
    """The measured errors of one conversion on one input batch."""
    float64: float  # plain vs original, both in float64
    float32: float  # plain vs original in float64, the plain network run in float32
    original_float32: float  # the original's own float32 error (the floor)
    bound: float  # float32_bound(offset, original_float32)

    @property
    def exact(self) -> bool:
        return self.float64 < FLOAT64_TOLERANCE and self.float32 <= self.bound

    def describe(self) -> str:
        return (f'float64 relative error {self.float64:.2e} (must be < {FLOAT64_TOLERANCE:.0e}); float32 '
                f'{self.float32:.2e} (bound {self.bound:.2e} = the original\'s own float32 error '
                f'{self.original_float32:.2e} + {FLOAT32_ERROR_PER_C / 2 ** -24:g} C 2^-24)')


def measure_equivalence(original: nn.Module, plain64: nn.Module, plain32: nn.Module, inputs: Tensor,
                        offset: float) -> Equivalence:
    """Compare ``plain64`` / ``plain32`` (the conversion in float64 / float32) with ``original`` on ``inputs``.

    ``original`` is copied, not changed: its float64 and float32 copies give the reference and the floor.
    """
    import copy

    original64 = copy.deepcopy(original).double().eval()
    original32 = copy.deepcopy(original).float().eval()
    with torch.no_grad():
        reference = original64(inputs.double())
        floor = relative_error(original32(inputs.float()), reference)
        return Equivalence(float64=relative_error(plain64.eval()(inputs.double()), reference),
                           float32=relative_error(plain32.eval()(inputs.float()), reference),
                           original_float32=floor, bound=float32_bound(offset, floor))
