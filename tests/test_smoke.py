import keras_biasinit as kbi


def test_version_is_a_string():
    assert isinstance(kbi.__version__, str) and kbi.__version__.count(".") == 2
