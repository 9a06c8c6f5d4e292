# contrib: see its owner's local.mk
