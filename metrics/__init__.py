"""Quality metrics of trained generators (FID, KID, precision/recall, IS, PPL); metric_main is the registry."""
