"""Linear probe: how much a stage-1 encoder's spaces know about generator traces before stage 2.

Fits a logistic regression (scikit-learn) on e, z_hom and z_het of 3,000 ntf-mini training images (real vs
dcgan) and prints the AP on the validation crops. Used for the lr1 choice of the mini preset (docs/METHOD.md):

    ntf stage1 --fresh --set epochs1=3 --set lr1=0.1 --set out=runs/lr0.1      # likewise 0.01, 0.001
    python benchmarks/linear_probe.py runs/lr0.1/stage1.pt
"""
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from ntf_core import train
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.evaluate import embed

trace, cfg, _ = train.load_trace_model(sys.argv[1])
mini = make_config("mini")
tr, va = scan(mini.train_dir), scan(mini.val_dir)
tr = [tr[i] for i in np.random.default_rng(0).choice(len(tr), 3000, replace=False)]
a, b = embed(trace, None, cfg, tr), embed(trace, None, cfg, va)
y_tr, y_va = [s.label for s in tr], [s.label for s in va]
for k in a:
    clf = LogisticRegression(max_iter=2000).fit(a[k], y_tr)
    print(f"{k:6} linear probe val AP {average_precision_score(y_va, clf.predict_proba(b[k])[:, 1]):.3f}")
