"""Child run names: from the swept overrides only, as the user typed them, deterministic."""
from lossexp.sweeps.naming import child_name, override_key, pretty_override


def test_loss_lists_read_as_compositions():
    assert pretty_override("loss=[hist_avg,activity]") == "loss=hist_avg+activity"
    assert pretty_override("loss=[hist_avg,activity],[activity],[]") == "loss=hist_avg+activity,activity,none"


def test_only_swept_keys_name_the_child_and_fixed_ones_are_left_out():
    overrides = ["model=mlp", "loss=[hist_avg,activity]", "optimizer.learning_rate=0.01", "trainer.epochs=1"]
    name = child_name(overrides, ["loss", "optimizer.learning_rate"])
    assert name == "loss=hist_avg+activity,optimizer.learning_rate=0.01"
    assert child_name(list(overrides), ["optimizer.learning_rate", "loss"]) == name  # deterministic


def test_grid_children_are_distinct_and_trials_numbered():
    jobs = [["loss=[hist_avg,activity]"], ["loss=[activity]"], ["loss=[coef]"]]
    assert len({child_name(job, ["loss"]) for job in jobs}) == 3
    trial = child_name(["loss.activity.weight=0.0012345678901"], ["loss.activity.weight"], job_num=3, numbered=True)
    assert trial == "#3 loss.activity.weight=0.001235"


def test_without_known_sweep_keys_all_overrides_name_the_child():
    assert child_name(["+loss.activity.weight=0.1", "model=mlp"], []) == "loss.activity.weight=0.1,model=mlp"
    assert override_key("~+loss.x=1") == "loss.x"
    assert child_name([], []) == "defaults"


def test_a_key_set_twice_is_named_by_its_last_value():
    """A whole weight mapping is set as null, then as the mapping (``lossexp.overrides``): one name part."""
    overrides = ["++loss.kl.weight=null", "++loss.kl.weight={schedule: linear, steps: 5}", "model=mlp"]
    assert child_name(overrides, ["loss.kl.weight"]) == "loss.kl.weight={schedule: linear, steps: 5}"
