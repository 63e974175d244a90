"""MemSR's exact conversion of skip-connected SR networks into plain conv networks (Sec. 3.2), framework-free.

``merges`` (the exact merges, each a function on conv parameters), ``graph`` (a network read as nested branches;
torch.fx for blocks, registered describers for whole toolbox networks), ``compiler`` (the composition and the
export to ``archs.PlainConvSR``, re-exported here as the conversion's result), ``describers`` (MemSR's own
networks), ``reparam`` (ECB, RRRB, Conv3XC and ``RepSR``) and ``plain_files`` (a network converted, checked and
written as plain weights and options: ``python -m memsr_plugin.convert``).
"""
from memsr_plugin.archs import PlainConvSR  # noqa: F401
from memsr_plugin.conversion import describers  # noqa: F401  (registers the describer of EDSRPixelShuffle)
from memsr_plugin.conversion.compiler import DEFAULT_OFFSET, compile_nodes, convert, export  # noqa: F401
from memsr_plugin.conversion.graph import (Act, Affine, Conv, Network, Parallel, Shuffle, describe,  # noqa: F401
                                           describe_network, register_describer, residual)
from memsr_plugin.conversion.merges import NotConvertibleError  # noqa: F401
from memsr_plugin.conversion.reparam import ECB, RRRB, Conv3XC, RepSR  # noqa: F401
