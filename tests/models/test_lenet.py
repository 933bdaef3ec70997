"""LeNet-5: the parameter count to the unit."""

import keras

import kbench


def test_trainable_parameters_match_reference():
    model = kbench.build("lenet5")
    assert sum(int(keras.ops.size(w)) for w in model.trainable_weights) == 61_706
