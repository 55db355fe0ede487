"""Linear probe: how much a stage-1 encoder's spaces know about generator traces before stage 2.

Fits a logistic regression (scikit-learn) on e, z_hom and z_het of 3,000 ntf-mini training images
(real vs dcgan) and prints the AP on the validation crops. Used for the lr1 choice of the mini
preset (docs/METHOD.md):

    ntf stage1 --fresh --set epochs1=3 --set lr1=0.1 --set out=runs/lr0.1  # likewise 0.01, 0.001
    python benchmarks/linear_probe.py runs/lr0.1/stage1.pt
"""

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from ntf_core import checkpoints
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.evaluate import embed

trace, cfg, _ = checkpoints.load_trace_model(sys.argv[1])
mini = make_config("mini")
train, val = scan(mini.train_dir), scan(mini.val_dir)
train = [train[i] for i in np.random.default_rng(0).choice(len(train), 3000, replace=False)]
train_spaces, val_spaces = embed(trace, None, cfg, train), embed(trace, None, cfg, val)
y_train, y_val = [s.label for s in train], [s.label for s in val]
for space in train_spaces:
    probe = LogisticRegression(max_iter=2000).fit(train_spaces[space], y_train)
    ap = average_precision_score(y_val, probe.predict_proba(val_spaces[space])[:, 1])
    print(f"{space:6} linear probe val AP {ap:.3f}")
