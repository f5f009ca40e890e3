"""The equations of docs/model.md written out plainly from a state_dict (loops, no project code).

Used only by the tests, to check that the project's models compute what that page says.
"""
import math

import torch


def linear(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def question_vector(sd, words):
    """tanh(embedding) -> one-layer LSTM -> tanh([h; c]) -> fc, for one question (list of ids)."""
    W_ih, W_hh = sd["question_encoder.lstm.weight_ih_l0"], sd["question_encoder.lstm.weight_hh_l0"]
    b = sd["question_encoder.lstm.bias_ih_l0"] + sd["question_encoder.lstm.bias_hh_l0"]
    h = torch.zeros(512)
    c = torch.zeros(512)
    for w in words:
        x = torch.tanh(sd["question_encoder.word2vec.weight"][w])
        gates = W_ih @ x + W_hh @ h + b
        i, f, g, o = gates.split(512)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return linear(torch.tanh(torch.cat([h, c])), sd, "question_encoder.fc")


def audio_vector(sd, a128):
    return linear(torch.relu(linear(a128, sd, "fc_a1")), sd, "fc_a2")


def grounded_visual(sd, audio512, fmap):
    """fmap [512,14,14]: softmax over positions of cosine(position, sound) -> fc_gl(tanh([avg; grd]))."""
    positions = fmap.reshape(512, 196).T                          # [196, 512]
    avg = positions.mean(0)
    unit = torch.stack([p / max(p.norm(), 1e-12) for p in positions])
    a = audio512 / max(audio512.norm(), 1e-12)
    att = torch.softmax(unit @ a, 0)
    grd = (att[:, None] * unit).sum(0)
    return linear(torch.tanh(torch.cat([avg, grd])), sd, "fc_gl"), att


def match_logits(sd, audio512, grounded):
    x = torch.cat([audio512, grounded])
    for name in ("fc1", "fc2", "fc3"):
        x = torch.relu(linear(x, sd, name))
    return linear(x, sd, "fc4")


def attention(sd, name, query, keys):
    """nn.MultiheadAttention(512, 4 heads) in eval mode, one query over T keys (= values)."""
    W, bias = sd[f"{name}.in_proj_weight"], sd[f"{name}.in_proj_bias"]
    q = W[:512] @ query + bias[:512]
    k = keys @ W[512:1024].T + bias[512:1024]
    v = keys @ W[1024:].T + bias[1024:]
    heads = []
    for h in range(4):
        sl = slice(128 * h, 128 * (h + 1))
        w = torch.softmax(k[:, sl] @ q[sl] / math.sqrt(128), 0)
        heads.append((w[:, None] * v[:, sl]).sum(0))
    return linear(torch.cat(heads), sd, f"{name}.out_proj")


def layer_norm(x, sd, name, eps=1e-5):
    mu, var = x.mean(), x.var(unbiased=False)
    return (x - mu) / torch.sqrt(var + eps) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def temporal(sd, q, audio_seq, visual_seq):
    v = attention(sd, "attn_v", q, visual_seq)
    v = layer_norm(v + linear(torch.relu(linear(v, sd, "linear11")), sd, "linear12"), sd, "norm1")
    a = attention(sd, "attn_a", q, audio_seq)
    a = layer_norm(a + linear(torch.relu(linear(a, sd, "linear21")), sd, "linear22"), sd, "norm2")
    return a, v


def avst_answer_logits(sd, audio, visual, words):
    """audio [T,128], visual [T,512,14,14], words: list of ids -> answer logits (eval mode)."""
    q = question_vector(sd, words)
    a = torch.stack([audio_vector(sd, x) for x in audio])
    g = torch.stack([grounded_visual(sd, a[t], visual[t])[0] for t in range(len(a))])
    a_att, v_att = temporal(sd, q, a, g)
    fused = linear(torch.tanh(torch.cat([a_att + a.mean(0), v_att + g.mean(0)])), sd, "fc_fusion")
    return linear(torch.tanh(fused * q), sd, "fc_ans")


def baseline_answer_logits(sd, audio, visual, words):
    q = question_vector(sd, words)
    a = torch.stack([audio_vector(sd, x) for x in audio])
    v = visual.mean(dim=(2, 3))
    a_att, v_att = temporal(sd, q, a, v)
    fused = linear(torch.tanh(torch.cat([a_att, v_att])), sd, "fc_fusion")
    return linear(torch.tanh(fused * q), sd, "fc_ans")


# The ablation ladder (the paper's Q, A+Q, V+Q, A+V+Q, +TG; +SG is avst_answer_logits above): AVST's
# fusion and answer head, with the parts a rung lacks left out. audio [T,128], visual [T,512,14,14].

def fused_answer(sd, audio_half, visual_half, words):
    """fc_ans(tanh(fc_fusion(tanh([audio_half; visual_half])) * q)): AVST's fusion of two 512-d halves."""
    q = question_vector(sd, words)
    fused = linear(torch.tanh(torch.cat([audio_half, visual_half])), sd, "fc_fusion")
    return linear(torch.tanh(fused * q), sd, "fc_ans")


def frame_average(fmap):
    """[512,14,14] -> the mean over the 196 positions, [512]."""
    return fmap.reshape(512, 196).mean(1)


def question_only_logits(sd, words):
    """Q: fc_ans(tanh(q))."""
    return linear(torch.tanh(question_vector(sd, words)), sd, "fc_ans")


def audio_question_logits(sd, audio, words):
    """A+Q: the audio vectors averaged over the T seconds; the visual half is zero."""
    a = torch.stack([audio_vector(sd, x) for x in audio]).mean(0)
    return fused_answer(sd, a, torch.zeros(512), words)


def visual_question_logits(sd, visual, words):
    """V+Q: the frame averages averaged over the T seconds; the audio half is zero."""
    v = torch.stack([frame_average(f) for f in visual]).mean(0)
    return fused_answer(sd, torch.zeros(512), v, words)


def audio_visual_question_logits(sd, audio, visual, words):
    """A+V+Q: both pooled over the T seconds, no grounding."""
    a = torch.stack([audio_vector(sd, x) for x in audio]).mean(0)
    v = torch.stack([frame_average(f) for f in visual]).mean(0)
    return fused_answer(sd, a, v, words)


def temporal_grounding_logits(sd, audio, visual, words):
    """+TG: the question attends over the T audio vectors and the T frame averages; AVST's fusion."""
    q = question_vector(sd, words)
    a = torch.stack([audio_vector(sd, x) for x in audio])
    v = torch.stack([frame_average(f) for f in visual])
    a_att, v_att = temporal(sd, q, a, v)
    return fused_answer(sd, a_att + a.mean(0), v_att + v.mean(0), words)
