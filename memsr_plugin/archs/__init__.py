"""MemSR's networks, framework-free and registered for BasicSR and MMagic (``effsr_core.registry``): the paper's
teacher ``EDSRPixelShuffle`` and ``PlainConvSR``, the plain conv/ReLU/PixelShuffle network every conversion exports
and every student is. (``RepSR``, trained re-parameterisable, is built from the conversion's blocks:
``conversion.reparam``.)"""
from memsr_plugin.archs.edsr_pixel_shuffle_arch import DIV2K_RGB_MEAN, EDSRPixelShuffle
from memsr_plugin.archs.plain_arch import ACTIVATIONS, PlainConvSR, body_length

__all__ = ['ACTIVATIONS', 'DIV2K_RGB_MEAN', 'EDSRPixelShuffle', 'PlainConvSR', 'body_length']
