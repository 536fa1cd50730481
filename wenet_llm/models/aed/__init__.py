"""WeNet-compatible Conformer attention encoder-decoder (AED): model, modules and checkpoint loader."""

from wenet_llm.models.aed.asr_model import AEDOutput, ASRModel, add_sos_eos
from wenet_llm.models.aed.conformer_encoder import ConformerEncoder
from wenet_llm.models.aed.transformer_decoder import TransformerDecoder
from wenet_llm.models.aed.wenet_compat import LoadReport, WenetCompatError, config_from_wenet, load_wenet

__all__ = [
    "AEDOutput",
    "ASRModel",
    "ConformerEncoder",
    "LoadReport",
    "TransformerDecoder",
    "WenetCompatError",
    "add_sos_eos",
    "config_from_wenet",
    "load_wenet",
]
