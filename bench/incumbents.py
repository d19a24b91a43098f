"""Incumbent runtimes' instruction counts on the emulated phone cores (../shared/models/README.md,
"Phones"): single thread, one invoke after loading (mean of invokes 2-11), counted exactly by a QEMU
TCG plugin under Debian's qemu-aarch64 7.2, on the seed-0 .tflite input. tinyconv's own count
(tinyconv profile --device qemu-aarch64[-i8mm]) is one inference, also excluding loading."""

from __future__ import annotations

# device -> model -> {runtime: instructions per inference}
PHONE_INCUMBENTS: dict[str, dict[str, dict[str, int]]] = {
    "qemu-aarch64": {  # -cpu cortex-a76 (Armv8.2-A, NEON + dotprod)
        "kws": {"xnnpack": 710_400, "litert_builtin": 756_733, "onnxruntime": 857_330},
        "vww": {"xnnpack": 1_925_632, "litert_builtin": 2_953_942, "onnxruntime": 3_358_801},
        "ic": {"xnnpack": 1_497_498, "litert_builtin": 2_714_803, "onnxruntime": 2_735_162},
        "ad": {"xnnpack": 43_789, "litert_builtin": 259_699, "onnxruntime": 258_906},
    },
    "qemu-aarch64-i8mm": {  # -cpu max,sme=off,sve-default-vector-length=16 (+ i8mm, SVE2 at 128 bit)
        "kws": {"xnnpack": 732_248, "litert_builtin": 751_341, "onnxruntime": 851_449},
        "vww": {"xnnpack": 1_899_532, "litert_builtin": 2_940_090, "onnxruntime": 3_345_038},
        "ic": {"xnnpack": 1_252_444, "litert_builtin": 2_715_065, "onnxruntime": 2_742_125},
        "ad": {"xnnpack": 40_289, "litert_builtin": 259_609, "onnxruntime": 292_586},
    },
}


def xnnpack(device: str, model: str) -> int | None:
    return PHONE_INCUMBENTS.get(device, {}).get(model, {}).get("xnnpack")
