"""Each method's settings are validated once per run: the entry point's check, the model, the scheduler offset and
the lifecycle receive the same immutable object, and no rule is checked twice."""
from types import MappingProxyType

import pytest
import yaml

from effsr_core.options import Option, OptionError, OptionSection
from ssl_plugin.options import PRUNING
from ssl_plugin.pruning.config import PruningConfig
from test_options import REPO_ROOT

SSL_DEMO = REPO_ROOT / 'options/basicsr/ssl/demo_SSL_BasicVSR_tiny_offline.yml'


@pytest.fixture
def validations(monkeypatch):
    """Counts the checks actually run, per section name."""
    counts: dict[str, int] = {}
    original = OptionSection.validate_values

    def counted(self, given, prefix=None):
        counts[self.name] = counts.get(self.name, 0) + 1
        return original(self, given, prefix)

    monkeypatch.setattr(OptionSection, 'validate_values', counted)
    return counts


def test_an_immutable_section_is_checked_once_per_content(validations):
    section = OptionSection('once', 'test', (Option('width', 8, 'a width', minimum=1),
                                              Option('gain', 1.0, 'a gain'),
                                              Option('names', None, 'names', type=str, nullable=True, is_list=True)))
    first = section.check({'width': 3, 'names': ['a']}, 'once')
    assert section.check({'width': 3, 'names': ('a',)}, 'elsewhere.once') is first  # same content, same object
    assert section.check(dict(first)) is first  # its own checked values too
    assert validations == {'once': 1}
    assert isinstance(first, MappingProxyType)
    with pytest.raises(TypeError):
        first['width'] = 4  # read-only: nobody downstream can change what was checked
    assert section.check({'width': 3, 'gain': 2}) == section.check({'width': 3, 'gain': 2.0})  # 2 is not 2.0:
    assert validations == {'once': 3}  # checked apart, as a check tells int from float
    with pytest.raises(OptionError, match='elsewhere.once.width'):
        section.check({'width': 0}, 'elsewhere.once')
    with pytest.raises(OptionError, match='elsewhere.once.width'):  # a refusal is never remembered
        section.check({'width': 0}, 'elsewhere.once')


def test_a_section_with_mapping_values_is_checked_each_time(validations):
    section = OptionSection('loss', 'test', (Option('loss_opt', None, 'a loss', type=dict, nullable=True),))
    given = {'loss_opt': {'type': 'L1Loss'}}
    first = section.check(given)
    assert section.check(given) is not first and validations == {'loss': 2}  # callers may change the mapping


def test_one_basicsr_ssl_run_validates_its_pruning_settings_once(validations):
    """The options check, the model's checks, the scheduler offset (asked again when pruning rebuilds the
    schedulers) and the lifecycle of one run: one check of ``pruning``, one ``PruningConfig``."""
    from effsr_core.basicsr import register_all
    from effsr_core.basicsr.options_check import check_basicsr_options
    from effsr_core.basicsr.schedulers import schedule_offset
    from ssl_plugin.basicsr.model import SSLPruningModel
    from ssl_plugin.lifecycle import SSLPruningLifecycle

    register_all()
    opt = yaml.safe_load(SSL_DEMO.read_text())
    opt['pruning']['ratio'] = 0.4375  # content no other test checks in this process
    check_basicsr_options(opt, check_paths=False)
    offsets = {schedule_offset(SSLPruningModel, opt) for _ in range(2)}
    lifecycle = SSLPruningLifecycle(opt['pruning'], teacher_path='unused.pth', curve_path='unused.csv')
    assert validations.get('pruning') == 1
    assert lifecycle.config is PruningConfig.from_options(opt['pruning'], 'pruning')
    assert offsets == {lifecycle.config.prune_iter - 1}


def test_settings_built_in_code_are_checked_like_options():
    with pytest.raises(OptionError, match='pruning.ratio'):
        PruningConfig(ratio=1.0)
    assert PruningConfig(method='l1_norm').selection == 'min_local'  # the method's defaults resolved once
    assert PRUNING.check({'method': 'assl'})['units'] is None  # the declaration keeps "not given"
