"""Helpers of the bad-input tests: options with one change applied, and a BasicSR run that must be refused."""
import copy
import sys

import pytest
import yaml

DROP = object()


def changed(opt: dict, changes: dict) -> dict:
    """A copy of ``opt`` with ``changes`` applied: ``{'a.b.c': value}``; ``DROP`` removes the key."""
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


def refused_train(monkeypatch, tmp_path, opt: dict, *extra: str) -> str:
    """Run ``python -m effsr_core.train`` in-process in an empty folder; return its one-line error message.

    BasicSR's pipeline is replaced by its first step (BasicSR's ``parse_options``, which checks the options file
    first), then a failure, so options that pass the check cannot start training; the folder must still be empty
    afterwards.
    """
    import basicsr.train

    from effsr_core.basicsr.entry import train

    options = tmp_path / 'options' / 'bad.yml'
    options.parent.mkdir()
    options.write_text(yaml.safe_dump(opt))
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    monkeypatch.setattr(sys, 'argv', [sys.argv[0]])

    def accepted(root_path):
        basicsr.train.parse_options(root_path, is_train=True)
        raise AssertionError('the options were accepted and training would start')

    monkeypatch.setattr(basicsr.train, 'train_pipeline', accepted)
    with pytest.raises(SystemExit) as exit_info:
        train(['-opt', str(options), *extra])
    assert list(run_dir.iterdir()) == [], 'something was written before the options were refused'
    message = str(exit_info.value.code)
    assert '\n' not in message and 'Traceback' not in message
    return message
