"""The Python side of the Hugging Face checks: transformers itself loads, scores and makes DeepSeek-V2/V3 folders.

  python3 tools/hf_check.py score DIR TEXTFILE SEQLEN   -> JSON: nll per predicted byte, load report, tokenizer ids
  python3 tools/hf_check.py make {v2,v3} DIR            -> save_pretrained of a random tiny model, then its score setup
  python3 tools/hf_check.py mtp DIR IDS_JSON            -> logits of the first MTP layer, by transformers' MtpModel

Scoring cuts the text into consecutive windows of SEQLEN bytes, each predicting its bytes after the first, as
`npm run eval` does. The last line printed is one JSON object.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def score(folder, text_file, seq_len):
    model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True, dtype=torch.float32)
    model.eval()
    data = open(text_file, 'rb').read()
    text = data.decode('utf-8')
    tokenizer = AutoTokenizer.from_pretrained(folder) if os.path.exists(os.path.join(folder, 'tokenizer.json')) else None
    ids = tokenizer(text, add_special_tokens=False)['input_ids'] if tokenizer else None
    total, predicted = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), seq_len):
            window = list(data[start:start + seq_len])
            if len(window) < 2:
                continue
            x = torch.tensor([window])
            logits = model(x).logits[0, :-1].double()
            total += torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction='sum').item()
            predicted += len(window) - 1
    return {
        'bytes': len(data), 'predicted': predicted, 'nll': total / predicted,
        'missing': sorted(info['missing_keys']), 'unexpected': sorted(info['unexpected_keys']),
        'mismatched': [str(m) for m in info['mismatched_keys']],
        'modelClass': type(model).__name__, 'tokenizerIdsMatch': ids == list(data) if tokenizer else None,
        'decoded': tokenizer.decode(ids) == text if tokenizer else None,
    }


def make(kind, folder):
    """A random tiny model with every part an import must handle: q_lora (V3), groups, a bias, a shared expert,
    a dense first layer; weights drawn wider than transformers' 0.02 so a wrong layout shows in the scores."""
    torch.manual_seed(0)
    common = dict(vocab_size=256, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
                  num_experts_per_tok=3, first_k_dense_replace=1, kv_lora_rank=16, qk_nope_head_dim=8,
                  qk_rope_head_dim=8, v_head_dim=12, max_position_embeddings=64, rms_norm_eps=1e-5)
    if kind == 'v3':
        from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
        config = DeepseekV3Config(**common, q_lora_rank=16, n_group=4, topk_group=2, routed_scaling_factor=2.5,
                                  norm_topk_prob=True, num_nextn_predict_layers=0)
        model = DeepseekV3ForCausalLM(config)
    else:
        from transformers import DeepseekV2Config, DeepseekV2ForCausalLM
        config = DeepseekV2Config(**common, q_lora_rank=None, n_group=4, topk_group=2, topk_method='group_limited_greedy',
                                  routed_scaling_factor=1.5)
        model = DeepseekV2ForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1 + 0.1 * torch.randn_like(p) if name.endswith('norm.weight') else 0.3 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith('e_score_correction_bias'):
                b.copy_(0.1 * torch.randn_like(b))
    model.save_pretrained(folder)
    return {'saved': folder, 'parameters': sum(p.numel() for p in model.parameters())}


def mtp(folder, ids_file):
    """transformers' own MTP layer (MtpModel, what generate(use_mtp=True) drafts with) on a sequence: position i pairs
    the main model's last hidden state at i with the embedding of token i + 1 and predicts token i + 2."""
    from transformers.modeling_layers import MtpModel
    model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True, dtype=torch.float32)
    model.eval()
    n = model.config.num_hidden_layers
    # transformers lists DeepSeek-V3's MTP keys as those of layer 61; ours follow our last layer.
    model._keys_to_ignore_on_load_unexpected = [rf'model\.layers\.{n}\..*']
    mtp_model = MtpModel.from_pretrained(model)
    mtp_model.eval()
    ids = torch.tensor([json.load(open(ids_file))])
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states[-1][:, :-1]  # after the final norm
        ahead = ids[:, 1:]
        embeds = mtp_model.embed_tokens(ahead)
        positions = torch.arange(1, ids.shape[1]).unsqueeze(0)
        rotary = mtp_model.rotary_emb(embeds, position_ids=positions)
        masks = mtp_model.create_masks_for_mtp_layer(0, embeds, None, positions)
        out = mtp_model.layers[0](embeds, hidden, position_embeddings=rotary, position_ids=positions, past_key_values=None, **masks)
        logits = mtp_model._project_to_logits(out)[0]
    return {
        'logits': logits.flatten().tolist(), 'unexpected': sorted(info['unexpected_keys']), 'missing': sorted(info['missing_keys']),
    }


if __name__ == '__main__':
    command = sys.argv[1]
    if command == 'score':
        result = score(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == 'make':
        result = make(sys.argv[2], sys.argv[3])
    elif command == 'mtp':
        result = mtp(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f'unknown command {command!r}')
    print(json.dumps(result))
