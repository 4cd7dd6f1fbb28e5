"""Models, tokenizers, prompts and LoRA of idagym.agents (tiny models only)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

from idagym.agents.config import ModelConfig  # noqa: E402
from idagym.agents.models import ModelNotFoundError, load_model_and_tokenizer, save_model  # noqa: E402
from idagym.agents.prompts import NO_CODE_BLOCK, extract_action, system_prompt  # noqa: E402
from idagym.agents.tokenizers import byte_tokenizer, word_tokenizer  # noqa: E402


def test_byte_tokenizer_round_trips_any_text():
    tok = byte_tokenizer()
    text = "print('héllo')\n\t日本 <x> ```python"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode())  # token id = byte value
    assert tok.decode(ids) == text
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok(chat, add_special_tokens=False)["input_ids"][0] == tok.convert_tokens_to_ids("<|im_start|>") == 256


def test_word_tokenizer_one_token_per_word():
    tok = word_tokenizer(["read", "memo", "says", "pay", "alice"])
    ids = tok("memo says pay alice", add_special_tokens=False)["input_ids"]
    assert len(ids) == 4 and tok.unk_token_id not in ids
    assert tok.decode(ids) == "memo says pay alice"
    assert tok("pay zed", add_special_tokens=False)["input_ids"][1] == tok.unk_token_id


def test_tiny_model_is_deterministic_from_seed():
    a, tok = load_model_and_tokenizer(ModelConfig(name="tiny", seed=1))
    b, _ = load_model_and_tokenizer(ModelConfig(name="tiny", seed=1))
    c, _ = load_model_and_tokenizer(ModelConfig(name="tiny", seed=2))
    wa, wb, wc = (m.model.embed_tokens.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.vocab_size == len(tok) == 259 and a.config.initializer_range == 0.1


def test_tiny_word_needs_vocabulary():
    with pytest.raises(ValueError, match="vocabulary"):
        load_model_and_tokenizer(ModelConfig(name="tiny-word"))
    model, tok = load_model_and_tokenizer(ModelConfig(name="tiny-word"), vocabulary=["read", "bob"])
    assert model.config.vocab_size == len(tok) == 9


@pytest.mark.parametrize("name", ["/no/such/folder", "no-such-org/no-such-model", "not a model"])
def test_missing_model_is_a_one_line_error(name):
    with pytest.raises(ModelNotFoundError) as err:
        load_model_and_tokenizer(ModelConfig(name=name))
    message = str(err.value)
    assert "\n" not in message and name in message and ("folder" in message)


def test_lora_trains_only_adapter_weights():
    cfg = ModelConfig(name="tiny", lora=True, lora_r=4, lora_alpha=8)
    model, _ = load_model_and_tokenizer(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 256, (2, 16))
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, before[name]), f"base weight {name} changed"
    # lora_B starts at zero and gets the first gradient: the adapter does learn
    assert any("lora_B" in n and not torch.equal(p, before[n]) for n, p in model.named_parameters())


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_saved_models_load_back_by_folder(tmp_path):
    ids = torch.randint(0, 256, (1, 12))
    # a tiny LoRA model has no base folder: saved merged, as full weights
    model, tok = load_model_and_tokenizer(ModelConfig(name="tiny", lora=True, lora_r=4))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)  # a non-trivial adapter
    save_model(model, tok, tmp_path / "merged")
    loaded, loaded_tok = load_model_and_tokenizer(ModelConfig(name=str(tmp_path / "merged")))
    assert torch.allclose(_logits(model, ids), _logits(loaded, ids), atol=1e-3)  # merging rounds
    text = "<|im_start|>user\nprint('héllo')<|im_end|>"
    assert loaded_tok(text).input_ids == tok(text).input_ids and loaded_tok.chat_template == tok.chat_template
    # a LoRA model on a base saved in a folder: saved as its adapter, loaded onto that base
    base, tok = load_model_and_tokenizer(ModelConfig(name="tiny"))
    save_model(base, tok, tmp_path / "base")
    model, _ = load_model_and_tokenizer(ModelConfig(name=str(tmp_path / "base"), lora=True, lora_r=4))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    save_model(model, tok, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()
    loaded, _ = load_model_and_tokenizer(ModelConfig(name=str(tmp_path / "adapter")))
    assert torch.allclose(_logits(model, ids), _logits(loaded, ids), atol=1e-3)  # merging rounds


def test_extract_action():
    reply = "I will look.\n```python\nprint(apis.api_docs.show_app_descriptions())\n```\nthen more"
    assert extract_action(reply, "code_block") == "print(apis.api_docs.show_app_descriptions())"
    assert extract_action("```python\nx = 1\nprint(x)", "code_block") == "x = 1\nprint(x)"  # cut off mid-block
    assert extract_action("just prose", "code_block") == f"print({NO_CODE_BLOCK!r})"
    assert extract_action("  read \n", "raw") == "read"
    with pytest.raises(ValueError):
        extract_action("x", "json")


def test_system_prompt_mentions_the_protocol():
    prompt = system_prompt("code_block", apis="apis.spotify.login")
    for needle in ("apis.api_docs", "```python", "apis.supervisor.complete_task", "apis.spotify.login"):
        assert needle in prompt
    assert system_prompt("raw") == ""


def test_vllm_serve_of_a_folder_without_weights_is_a_one_line_error(tmp_path, capsys):
    from idagym.cli import main

    assert main(["vllm", "serve", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"idagym vllm: error: {tmp_path} is not a folder of model weights (no config.json)\n"
