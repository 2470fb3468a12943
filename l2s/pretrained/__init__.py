"""Models shipped inside the package (each a checkpoint directory beside this file)."""
