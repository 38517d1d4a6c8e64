"""Text encoders (offline), the embedding cache, and prompt handling."""

from __future__ import annotations

import socket

import pytest
import torch

from diffugts.errors import DiffuGTSError
from diffugts.text import CachedTextEncoder, build_text_encoder, normalize, parse_prompt, relevance


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder("minilm")


def _cosine(encoder, a: str, b: str) -> float:
    vectors = encoder.embed([a, b])
    return float(vectors[0] @ vectors[1])


def test_minilm_loads_and_embeds_with_the_network_cut(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the text encoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    build_text_encoder.cache_clear()
    encoder = build_text_encoder("minilm")
    vectors = encoder.embed(["kidney tumor", "glioma"])
    assert vectors.shape == (2, 384) and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)
    assert encoder.name.startswith("all-MiniLM-L6-v2@")


def test_synonyms_land_near_each_other(minilm):
    assert _cosine(minilm, "renal mass", "kidney tumor") > _cosine(minilm, "renal mass", "lung nodule") + 0.2
    assert _cosine(minilm, "glioma", "brain tumor") > _cosine(minilm, "glioma", "kidney tumor") + 0.2
    assert _cosine(minilm, "mass in the pancreatic head", "pancreatic tumor") > \
        _cosine(minilm, "mass in the pancreatic head", "lung nodule") + 0.2


def test_nonsense_prompts_are_recognised_as_not_findings(minilm):
    from diffugts.text.prompts import RELEVANCE_THRESHOLD

    findings = ("kidney tumor", "renal mass", "glioma", "polyp", "ground glass opacity", "thickened bowel wall",
                "enhancing lesion in the left frontal lobe", "mass in the pancreatic head")
    nonsense = ("banana bread", "banana bread recipe", "asdf qwerty", "pizza", "chocolate cake", "my car is red")
    scores = relevance(minilm, [parse_prompt(t) for t in findings + nonsense])
    assert all(s > RELEVANCE_THRESHOLD + 0.1 for s in scores[:len(findings)]), scores
    assert all(s < RELEVANCE_THRESHOLD for s in scores[len(findings):]), scores


def test_cache_is_hit_on_the_second_call_and_gives_the_same_vectors(minilm, tmp_path):
    cached = CachedTextEncoder(minilm, tmp_path)
    first = cached.embed(["kidney tumor", "normal kidney on CT", "kidney tumor"])
    assert (cached.hits, cached.misses) == (0, 2)
    again = CachedTextEncoder(minilm, tmp_path)  # a new process would see the same files
    second = again.embed(["normal kidney on CT", "kidney tumor"])
    assert (again.hits, again.misses) == (2, 0)
    assert torch.equal(second[1], first[0]) and torch.equal(second[0], first[1])
    assert len(list(cached.directory.glob("*.npy"))) == 2


def test_damaged_cache_entry_is_recomputed(minilm, tmp_path):
    cached = CachedTextEncoder(minilm, tmp_path)
    expected = cached.embed(["liver lesion"])
    next(cached.directory.glob("*.npy")).write_bytes(b"garbage")
    again = CachedTextEncoder(minilm, tmp_path)
    assert torch.allclose(again.embed(["liver lesion"]), expected)
    assert again.misses == 1


def test_local_hugging_face_folder_encoder(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "kidney", "tumor", "renal", "mass", "normal", "liver"]
    BertTokenizer(vocab={word: index for index, word in enumerate(vocab)}).save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(tmp_path, safe_serialization=True)
    encoder = build_text_encoder(str(tmp_path))
    vectors = encoder.embed(["kidney tumor", "renal mass", "normal liver"])
    assert vectors.shape == (3, 32)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(encoder.embed(["kidney tumor"])[0], vectors[0], atol=1e-6)
    assert not torch.allclose(vectors[0], vectors[2])


def test_local_clip_text_model_folder_encoder(tmp_path):
    from transformers import BertTokenizer, CLIPTextConfig, CLIPTextModelWithProjection

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "kidney", "tumor", "renal", "mass", "normal", "liver"]
    BertTokenizer(vocab={word: index for index, word in enumerate(vocab)}).save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=16, projection_dim=24,
                            pad_token_id=0, bos_token_id=2, eos_token_id=3)
    CLIPTextModelWithProjection(config).save_pretrained(tmp_path, safe_serialization=True)
    encoder = build_text_encoder(str(tmp_path))
    vectors = encoder.embed(["kidney tumor", "normal liver"])
    assert encoder.dim == 24 and vectors.shape == (2, 24)  # the projected CLIP embedding, not the hidden size
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(vectors[0], vectors[1])


def _biomedclip_like_folder(folder, *, weights: str = "safetensors"):
    """An open_clip model folder laid out as BiomedCLIP's (config, tokenizer at the top, BERT text tower with a
    CLS pooler and MLP projection under 'text.*', a vision tower beside it), tiny, with the BERT config in a
    subfolder named after its repository; returns the tower's parts to compute the expected embedding."""
    import json

    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "kidney", "tumor", "renal", "mass", "normal", "liver"]
    BertTokenizer(vocab={word: index for index, word in enumerate(vocab)}).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    config.save_pretrained(folder / "BiomedNLP-BiomedBERT-base-uncased-abstract")
    torch.manual_seed(0)
    bert = BertModel(config, add_pooling_layer=False).eval()
    first, second = torch.randn(28, 32), torch.randn(24, 28)  # MLP projection: (32 + 24) // 2 hidden
    state = {f"text.transformer.{key}": value.contiguous() for key, value in bert.state_dict().items()}
    state.update({"text.proj.0.weight": first, "text.proj.2.weight": second, "logit_scale": torch.tensor(4.6),
                  "visual.trunk.patch_embed.proj.weight": torch.randn(8, 3, 16, 16)})
    if weights == "safetensors":
        save_file(state, str(folder / "open_clip_model.safetensors"))
    else:
        torch.save(state, folder / "open_clip_pytorch_model.bin")
    name = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {
        "embed_dim": 24,
        "vision_cfg": {"timm_model_name": "vit_base_patch16_224", "timm_pool": "", "timm_proj": "linear",
                       "image_size": 224},
        "text_cfg": {"hf_model_name": name, "hf_tokenizer_name": name, "hf_proj_type": "mlp",
                     "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 16}}}))
    return BertTokenizer.from_pretrained(folder), bert, first, second


@pytest.mark.parametrize("weights", ["safetensors", "bin"])
def test_biomedclip_open_clip_folder_encoder(tmp_path, weights):
    tokenizer, bert, first, second = _biomedclip_like_folder(tmp_path, weights=weights)
    encoder = build_text_encoder(str(tmp_path))
    texts = ["kidney tumor", "renal   mass", "normal liver"]
    vectors = encoder.embed(texts)
    assert encoder.dim == 24 and encoder.name.startswith("open_clip:")
    tokens = tokenizer(["kidney tumor", "renal mass", "normal liver"], padding=True, return_tensors="pt")
    with torch.no_grad():  # open_clip's HFTextEncoder: CLS token of the last hidden state, then the MLP
        cls = bert(**tokens).last_hidden_state[:, 0]
        expected = torch.nn.functional.normalize(torch.nn.functional.gelu(cls @ first.T) @ second.T, dim=-1)
    assert torch.allclose(vectors, expected, atol=1e-5)
    assert not torch.allclose(vectors[0], vectors[2])


def test_biomedclip_folder_without_its_text_config_says_what_to_download(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # nothing cached: only the folder counts
    _biomedclip_like_folder(tmp_path)
    shutil.rmtree(tmp_path / "BiomedNLP-BiomedBERT-base-uncased-abstract")
    with pytest.raises(DiffuGTSError, match="not available offline.*BiomedNLP-BiomedBERT-base-uncased-abstract/"):
        build_text_encoder(str(tmp_path))
    _biomedclip_like_folder(tmp_path)
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"not weights")
    with pytest.raises(DiffuGTSError, match="cannot read the model weights"):
        build_text_encoder(str(tmp_path))


def test_unknown_encoder_and_bad_folder_say_what_to_use(tmp_path):
    with pytest.raises(DiffuGTSError, match="unknown text encoder 'biomedclip'.*Use 'minilm' or the path"):
        build_text_encoder("biomedclip")
    with pytest.raises(DiffuGTSError, match=r"config.json \(or open_clip_config.json\) is missing"):
        build_text_encoder(str(tmp_path))


@pytest.mark.parametrize(("typed", "clean"), [
    ("Kidney  Tumor!", "kidney tumor"),
    ("  MASS in the pancreatic head. ", "mass in the pancreatic head"),
    ('"glioma"', "glioma"),
])
def test_prompts_are_normalized(typed, clean):
    assert normalize(typed) == clean


def test_prompt_templates_use_the_organ_and_modality():
    prompt = parse_prompt("Renal mass", modality="CT")
    assert prompt.organ_name == "kidney"
    assert prompt.abnormal == ("renal mass", "renal mass on CT", "a CT scan showing renal mass", "renal mass in the kidney")
    assert prompt.normal == ("normal kidney on CT", "healthy kidney tissue", "kidney without lesions")
    glioma = parse_prompt("glioma", modality="MR-FLAIR")
    assert glioma.organ_name == "brain" and "normal brain on MRI" in glioma.normal
    unknown = parse_prompt("suspicious lesion", modality="MR")
    assert unknown.organ is None and unknown.normal[0] == "normal tissue on MRI"


def test_empty_and_overlong_prompts_are_refused_clearly():
    with pytest.raises(DiffuGTSError, match='the prompt is empty.*"kidney tumor"'):
        parse_prompt("  ?! ")
    with pytest.raises(DiffuGTSError, match="the prompt has 260 characters"):
        parse_prompt("tumor " * 43 + "ab")
