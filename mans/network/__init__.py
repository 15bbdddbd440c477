"""The MANs network in `keras` and `keras.ops`: the TARM layer, the augmentation layers, the STCM backbones."""
