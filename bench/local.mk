# bench: see its owner's local.mk
