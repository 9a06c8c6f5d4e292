# deliverd: see its owner's local.mk
