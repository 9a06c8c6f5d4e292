# spoold: see its owner's local.mk
