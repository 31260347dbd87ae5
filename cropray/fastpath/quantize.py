"""int8 static post-training quantization with PyTorch's PT2E flow and the x86 inductor quantizer.

PT2E moved out of torch in 2.9+: `torch.ao.quantization.quantize_pt2e` is gone, the flow lives in
`torchao.quantization.pt2e` (PERF_NOTES). Steps: export the (BN-folded, channels_last) model at a
fixed batch size -> insert observers on conv/linear/pool -> run calibration crops through it -> convert
to quantize/dequantize patterns that inductor (with freezing) lowers to oneDNN int8 kernels. Without
compilation the converted graph runs the q/dq ops in fp32 and is slower than fp32, so int8 is only
ever used compiled. Preprocessing (medians, asinh) stays fp32: the quantizer only annotates
conv/linear/pool/add patterns.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

log = logging.getLogger(__name__)


def _import_pt2e():
    """torchao prints loader noise for its CUDA-only extensions on CPU builds; keep it out of logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prev = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
            from torchao.quantization.pt2e import move_exported_model_to_eval
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        finally:
            logging.disable(prev)
    return xiq, prepare_pt2e, convert_pt2e, move_exported_model_to_eval


def quantize_int8(model: nn.Module, *, example: torch.Tensor, calibration: torch.Tensor | None,
                  max_calibration: int = 1024) -> nn.Module:
    """Return the PT2E-converted int8 module (a GraphModule taking (B,1,H,W) with B = example's B).

    `calibration` (n,1,H,W): crops whose activation ranges set the int8 scales (the bundle's own
    training crops, so the ranges match what scoring sees); `example` is used when it is None.
    """
    xiq, prepare_pt2e, convert_pt2e, to_eval = _import_pt2e()
    batch = example.shape[0]
    calib = example if calibration is None or len(calibration) == 0 else calibration[:max_calibration]
    with torch.no_grad():
        exported = torch.export.export(model.eval(), (example,), strict=False).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        for i in range(0, len(calib), batch):
            chunk = calib[i:i + batch]  # (<=batch, 1, H, W); the export is static: pad to batch
            if len(chunk) < batch:
                chunk = torch.cat([chunk, chunk[-1:].expand(batch - len(chunk), *chunk.shape[1:])])
            prepared(chunk.contiguous())
        converted = convert_pt2e(prepared)
        to_eval(converted)
    log.info("int8 PT2E: calibrated on %d crops", len(calib))
    return converted
