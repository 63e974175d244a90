"""Options with one change applied, for the bad-input tests: ``{'a.b.c': value}``, ``DROP`` removes the key."""
import copy

DROP = object()


def changed(opt: dict, changes: dict) -> dict:
    """A copy of ``opt`` with ``changes`` applied."""
    opt = copy.deepcopy(opt)
    for dotted, value in changes.items():
        *parents, last = dotted.split('.')
        target = opt
        for key in parents:
            target = target[key]
        if value is DROP:
            del target[last]
        else:
            target[last] = value
    return opt
