"""Configuration: dataclass schemas and their strict YAML loader."""

from wenet_llm.config.core import ConfigError, apply_override, from_dict, load_config, save_config, to_dict

__all__ = ["ConfigError", "apply_override", "from_dict", "load_config", "save_config", "to_dict"]
