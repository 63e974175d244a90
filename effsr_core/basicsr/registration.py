"""Publish the core's and every declared plugin's components to BasicSR's registries."""
from __future__ import annotations

from effsr_core import compat, registry
from effsr_core.basicsr.entry import check_before_parsing
from effsr_core.basicsr.plugin_model import keep_frozen_networks
from effsr_core.compat.fixes.for_basicsr import BEFORE_RESUME
from effsr_core.plugins import import_plugins

_done = False


def _named_as_class(name: str, cls: type) -> type:
    """BasicSR's public ``register`` files a class under its own ``__name__``: a different name cannot reach it."""
    if name != cls.__name__:
        raise KeyError(f'{cls.__module__}.{cls.__name__} is registered as {name!r}; BasicSR registers classes under '
                       'their own names, so name the class as the component.')
    return cls


def register_all() -> None:
    """Idempotent: environment fixes, neutral architectures and losses into ``ARCH_REGISTRY`` / ``LOSS_REGISTRY``,
    then each plugin's ``basicsr`` subpackage (its BasicSR models) and the core's BasicSR datasets; BasicSR's
    pipelines then check the options file before they parse it. LR schedulers have no BasicSR registry: the plugin
    models look them up in ``effsr_core.registry`` by name."""
    global _done
    if _done:
        return
    compat.install()
    if keep_frozen_networks not in BEFORE_RESUME:
        BEFORE_RESUME.append(keep_frozen_networks)  # the resume fix keeps the plugin models' frozen networks
    import basicsr.archs  # noqa: F401  (BasicSR's own names first, so that a clash is caught here)
    import basicsr.losses  # noqa: F401
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

    import_plugins()
    for kind, target in (('arch', ARCH_REGISTRY), ('loss', LOSS_REGISTRY)):
        registry.publish(kind, lambda name, target=target: target.get(name) if name in target else None,
                         lambda name, cls, target=target: target.register(_named_as_class(name, cls)),
                         toolbox='BasicSR')
    import_plugins(toolbox='basicsr')
    import effsr_core.basicsr.datasets  # noqa: F401  (the core's own BasicSR dataset)
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options

    for pipeline in (basicsr.utils.options, basicsr.train, basicsr.test):  # (and a script that imports it later)
        check_before_parsing(pipeline)  # a lab's own train.py gets the options check of effsr_core.train
    _done = True
