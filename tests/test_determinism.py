from bench.train.worker import run_one


def test_same_seed_same_strategy_gives_identical_ccc(tiny_config):
    a = run_one(tiny_config)
    b = run_one(tiny_config)
    assert a.metrics.ccc == b.metrics.ccc
    assert a.metrics.history[0].train_loss == b.metrics.history[0].train_loss


def test_every_strategy_sees_the_same_split(tiny_config):
    from dataclasses import replace

    a = run_one(replace(tiny_config, strategy="partial1"))
    b = run_one(replace(tiny_config, strategy="lora"))
    assert a.predictions.target == b.predictions.target
    assert a.data.padding_fraction == b.data.padding_fraction
