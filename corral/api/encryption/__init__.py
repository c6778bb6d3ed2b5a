"""Encryption at rest (Kubernetes' EncryptionConfiguration): config.py reads the
file, providers.py seals and opens values, store.py applies them under the
registry, files.py makes the default file and a rotation's edits."""
