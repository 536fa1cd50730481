"""The data pipeline: corpus formats, preparation, validation, tokenizers, features, augmentation, loading."""
