#!/usr/bin/python3
# PyTorch reference values for LoRA training on stories260K F32: loss, A/B gradients, and A/B after 10 AdamW steps.
"""
Writes test/fixtures/train/stories260K-lora-r4-torch.json and .f32, which test/train/torch-reference.test.ts
compares with lora-edge's f64 TypeScript training reference (src/train/reference/). Tests need no Python:
this script is run by hand, and its output is committed.

    /usr/bin/python3 scripts/torch-lora-reference.py [--check]

Needs Debian's python3-torch and python3-numpy (`apt-get install -y python3-torch python3-numpy`; made with
Debian 12's torch 1.13.1 package, CPU, which reports its version as 1.13.0a0). `--check` recomputes everything and compares it with the committed files instead of
writing them.

Everything is computed in float64 with torch's autograd, and the optimizer is torch.optim.AdamW with
torch.nn.utils.clip_grad_norm_: the TypeScript reference's own AdamW is checked against them, not copied.

Layout: how this model matches llama.cpp's
- A GGUF tensor with ne [n_in, n_out] (ggml order, innermost first) is read as a row-major (n_out, n_in)
  matrix: the layout of torch.nn.Linear.weight, so a projection is y = x @ W.T.
- LoRA halves as llama.cpp reads them: `<base>.lora_a` has ne [n_in, r], so A is (r, n_in) (PEFT's
  lora_A.weight); `<base>.lora_b` has ne [r, n_out], so B is (n_out, r). The projection is
  y = x @ W.T + (alpha / r) * (x @ A.T) @ B.T.
- q/k rows are in RoPE order already. Hugging Face llama rotates the pairs (i, i + d/2) of each head
  (rotate_half); llama.cpp's converter permutes the rows of the q and k weights so that those pairs become
  adjacent, (2i, 2i + 1), which is the pair order of ggml's normal-mode rope (mode 0, used for llama). So this
  script rotates adjacent pairs of the GGUF's rows, as ggml does, with theta_i = pos * base^(-2i / rope_dims),
  and no permutation is needed anywhere: an adapter's lora_b rows for q and k follow the same order. (A PEFT
  adapter trained on the Hugging Face weights needs its q/k lora_B rows permuted the same way.)
- Grouped-query attention: query head h reads key/value head h // (n_head / n_head_kv), as ggml broadcasts.
- RMSNorm: x / sqrt(mean(x^2) + eps) * w, eps from the GGUF (an f32). Feed-forward: down(silu(gate(x)) * up(x)).
- Loss: mean cross-entropy of the next token over the predictions the loss mask keeps.

Initialization: the same numbers as seededLora() in src/train/reference/lora.ts. One mulberry32 generator
(src/random.ts) seeded once gives, for each layer and each target in the order q, k, v, o, gate, up, down,
first A's values then B's, row-major, each (2u - 1) * range with range 1/sqrt(n_in) for A and B_RANGE for B.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "test/fixtures/models/stories260K.gguf")
OUT_JSON = os.path.join(ROOT, "test/fixtures/train/stories260K-lora-r4-torch.json")
OUT_BIN = os.path.join(ROOT, "test/fixtures/train/stories260K-lora-r4-torch.f32")

# The run: a rank-4 adapter on all 7 projections of all layers, one fixed sequence, 10 AdamW steps.
RANK = 4
ALPHA = 8.0
SEED = 20251203
B_RANGE = 0.05
TARGETS = ["q", "k", "v", "o", "gate", "up", "down"]
TENSOR = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}
# "Once upon a time, there was a little cat named Tom. Tom liked to play with his red ball." with BOS, in
# stories260K's vocabulary (SentencePiece, as llama.cpp tokenizes it).
TOKENS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 280, 294, 395, 274, 287, 426, 274, 287, 397, 355,
          267, 337, 335, 345, 352, 266, 268, 388, 426]
# The first 5 predictions (the prompt "Once upon a time,") do not count.
PROMPT_PREDICTIONS = 5
ADAMW = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1,
         "warmup_steps": 3, "total_steps": 10, "min_lr": 1e-3, "max_grad_norm": 0.5}

torch.set_default_dtype(torch.float64)


# ---------------------------------------------------------------- GGUF (F32 tensors only)

class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return v[0]

    def string(self):
        n = self.take("Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            item, n = self.take("I"), self.take("Q")
            return [self.value(item) for _ in range(n)]
        return self.take(self.SCALARS[t])


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    assert r.take("I") == 0x46554747, "not a GGUF file"
    assert r.take("I") in (2, 3)
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.take("I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        ne = [r.take("Q") for _ in range(r.take("I"))]
        infos.append((name, ne, r.take("I"), r.take("Q")))
    align = kv.get("general.alignment", 32)
    start = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        assert typ == 0, f"{name}: only F32 tensors are read here"
        n = int(np.prod(ne))
        a = np.frombuffer(data, dtype="<f4", count=n, offset=start + off).astype(np.float64)
        tensors[name] = torch.tensor(a.reshape(list(reversed(ne))))  # ne [n_in, n_out] -> (n_out, n_in)
    return kv, tensors


# ---------------------------------------------------------------- the seeded initialization

M32 = 0xFFFFFFFF


def mulberry32(seed):
    """src/random.ts's mulberry32 on unsigned 32-bit values: uniform in [0, 1)."""
    a = seed & M32

    def rnd():
        nonlocal a
        a = (a + 0x6D2B79F5) & M32
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & M32
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return rnd


def target_dims(c, t):
    q, kv = c["n_head"] * c["head_dim"], c["n_head_kv"] * c["head_dim"]
    return {"q": (c["n_embd"], q), "k": (c["n_embd"], kv), "v": (c["n_embd"], kv), "o": (q, c["n_embd"]),
            "gate": (c["n_embd"], c["n_ff"]), "up": (c["n_embd"], c["n_ff"]), "down": (c["n_ff"], c["n_embd"])}[t]


def seeded_lora(c):
    rnd = mulberry32(SEED)
    pairs = {}
    for l in range(c["n_layer"]):
        for t in TARGETS:
            n_in, n_out = target_dims(c, t)
            ra = 1.0 / math.sqrt(n_in)
            a = [(2 * rnd() - 1) * ra for _ in range(RANK * n_in)]
            b = [(2 * rnd() - 1) * B_RANGE for _ in range(n_out * RANK)]
            pairs[f"blk.{l}.{TENSOR[t]}.weight"] = (
                torch.tensor(a).reshape(RANK, n_in).requires_grad_(True),
                torch.tensor(b).reshape(n_out, RANK).requires_grad_(True),
            )
    return pairs


# ---------------------------------------------------------------- the model

def config(kv):
    a = kv["general.architecture"]
    assert a == "llama"
    n_embd, n_head = kv[f"{a}.embedding_length"], kv[f"{a}.attention.head_count"]
    head_dim = n_embd // n_head
    return {"n_embd": n_embd, "n_layer": kv[f"{a}.block_count"], "n_head": n_head,
            "n_head_kv": kv.get(f"{a}.attention.head_count_kv", n_head), "head_dim": head_dim,
            "n_ff": kv[f"{a}.feed_forward_length"], "rope_dims": kv.get(f"{a}.rope.dimension_count", head_dim),
            "rope_base": kv.get(f"{a}.rope.freq_base", 10000.0), "eps": kv[f"{a}.attention.layer_norm_rms_epsilon"]}


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, n_heads, c):
    """ggml's normal-mode rope on (T, n_heads * head_dim): adjacent pairs (2i, 2i+1) of the first rope_dims."""
    T, d, rd = x.shape[0], c["head_dim"], c["rope_dims"]
    x = x.reshape(T, n_heads, d)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    inv = torch.tensor([c["rope_base"] ** (-2.0 * i / rd) for i in range(rd // 2)])
    theta = pos * inv[None, :]  # (T, rd/2)
    cos, sin = torch.cos(theta)[:, None, :], torch.sin(theta)[:, None, :]
    x0, x1 = x[..., 0:rd:2], x[..., 1:rd:2]
    rot = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).reshape(T, n_heads, rd)
    return torch.cat([rot, x[..., rd:]], dim=-1).reshape(T, n_heads * d)


def linear(x, w, pair):
    y = x @ w.T
    if pair is not None:
        a, b = pair
        y = y + (ALPHA / RANK) * ((x @ a.T) @ b.T)
    return y


def attention(q, k, v, c):
    T, H, Hkv, d = q.shape[0], c["n_head"], c["n_head_kv"], c["head_dim"]
    q = q.reshape(T, H, d).transpose(0, 1)
    k = k.reshape(T, Hkv, d).transpose(0, 1).repeat_interleave(H // Hkv, dim=0)  # head h reads KV head h // (H / Hkv)
    v = v.reshape(T, Hkv, d).transpose(0, 1).repeat_interleave(H // Hkv, dim=0)
    s = (q @ k.transpose(1, 2)) / math.sqrt(d)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, H * d)


def forward_loss(c, w, lora, tokens, mask):
    x = w["token_embd.weight"][torch.tensor(tokens[:-1])]
    for l in range(c["n_layer"]):
        p = f"blk.{l}."
        pair = lambda t: lora.get(f"{p}{TENSOR[t]}.weight")
        n = rmsnorm(x, w[p + "attn_norm.weight"], c["eps"])
        q = rope(linear(n, w[p + "attn_q.weight"], pair("q")), c["n_head"], c)
        k = rope(linear(n, w[p + "attn_k.weight"], pair("k")), c["n_head_kv"], c)
        v = linear(n, w[p + "attn_v.weight"], pair("v"))
        x = x + linear(attention(q, k, v, c), w[p + "attn_output.weight"], pair("o"))
        n = rmsnorm(x, w[p + "ffn_norm.weight"], c["eps"])
        g, u = linear(n, w[p + "ffn_gate.weight"], pair("gate")), linear(n, w[p + "ffn_up.weight"], pair("up"))
        x = x + linear(torch.nn.functional.silu(g) * u, w[p + "ffn_down.weight"], pair("down"))
    logits = rmsnorm(x, w["output_norm.weight"], c["eps"]) @ w.get("output.weight", w["token_embd.weight"]).T
    losses = torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:]), reduction="none")
    keep = torch.tensor(mask, dtype=torch.bool)
    return losses[keep].mean()


def learning_rate(step):
    """Step `step` (0-based): linear warm-up to lr, then a half cosine down to min_lr at total_steps."""
    o = ADAMW
    if step < o["warmup_steps"]:
        return o["lr"] * (step + 1) / o["warmup_steps"]
    progress = min(1.0, (step - o["warmup_steps"]) / max(1, o["total_steps"] - o["warmup_steps"]))
    return o["min_lr"] + (o["lr"] - o["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- the run

def run():
    kv, w = read_gguf(MODEL)
    c = config(kv)
    lora = seeded_lora(c)
    mask = [i >= PROMPT_PREDICTIONS for i in range(len(TOKENS) - 1)]
    names = list(lora.keys())
    params = [t for name in names for t in lora[name]]
    first_a = float(lora[names[0]][0].reshape(-1)[0])

    loss0 = forward_loss(c, w, lora, TOKENS, mask)
    loss0.backward()
    grads = [p.grad.detach().clone() for p in params]

    for p in params:
        p.grad = None
    o = ADAMW
    opt = torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    steps = []
    for s in range(o["total_steps"]):
        opt.zero_grad()
        loss = forward_loss(c, w, lora, TOKENS, mask)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, o["max_grad_norm"])
        lr = learning_rate(s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        steps.append({"loss": float(loss), "lr": lr, "grad_norm": float(norm)})
    with torch.no_grad():
        final_loss = float(forward_loss(c, w, lora, TOKENS, mask))
    values = [p.detach().clone() for p in params]

    tensors, offset = [], 0
    for name in names:
        for half, t in zip(("a", "b"), lora[name]):
            tensors.append({"name": f"{name}.lora_{half}", "shape": list(t.shape), "offset": offset})
            offset += t.numel()
    blob = np.concatenate([g.reshape(-1).numpy() for g in grads] + [v.reshape(-1).numpy() for v in values]).astype("<f4")
    meta = {
        "description": "PyTorch (float64, autograd, torch.optim.AdamW) LoRA training reference on stories260K F32. "
                       "Made by scripts/torch-lora-reference.py; the .f32 file holds, as little-endian f32, the "
                       "gradients of every tensor at the initial values (tensor order, offsets in values), then "
                       "the values after all steps (offset + values).",
        "torch": torch.__version__,
        "model": "test/fixtures/models/stories260K.gguf",
        "rank": RANK, "alpha": ALPHA, "seed": SEED, "a_range": 1.0, "b_range": B_RANGE, "targets": TARGETS,
        "first_a_value": first_a,
        "tokens": TOKENS, "loss_mask": mask,
        "adamw": ADAMW,
        "loss": float(loss0),
        "steps": steps,
        "loss_after_steps": final_loss,
        "values": offset,
        "tensors": tensors,
    }
    return meta, blob


def main():
    meta, blob = run()
    if "--check" in sys.argv[1:]:
        with open(OUT_JSON) as f:
            old = json.load(f)
        old_blob = np.fromfile(OUT_BIN, dtype="<f4")
        same = old_blob.shape == blob.shape and float(np.max(np.abs(old_blob - blob))) <= 1e-6 * float(np.max(np.abs(blob)))
        same = same and abs(old["loss"] - meta["loss"]) <= 1e-12 * abs(meta["loss"])
        print("committed values reproduced" if same else "committed values differ")
        sys.exit(0 if same else 1)
    os.makedirs(os.path.dirname(OUT_JSON), exist_ok=True)
    for path, write in ((OUT_BIN, lambda f: f.write(blob.tobytes())),
                        (OUT_JSON, lambda f: f.write((json.dumps(meta, indent=1) + "\n").encode()))):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    print(f"loss {meta['loss']:.6f}, after {len(meta['steps'])} steps {meta['loss_after_steps']:.6f}; "
          f"{meta['values']} values; wrote {os.path.relpath(OUT_JSON, ROOT)} and {os.path.relpath(OUT_BIN, ROOT)}")


if __name__ == "__main__":
    main()
