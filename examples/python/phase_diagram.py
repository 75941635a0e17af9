"""A phase diagram in a dozen lines: the fraction of token pairs that have merged
(cosine above 0.999) after time T, against beta, for an ensemble of systems run at once.

    pip install ./python matplotlib && python examples/python/phase_diagram.py
"""
import matplotlib.pyplot as plt
import numpy as np

import attnflow as af

betas = np.linspace(0.5, 9.0, 18)
res = af.run(n=32, d=8, beta=list(betas), t_end=10.0, steps=200, backend="auto")
cos = np.einsum("bid,bjd->bij", res.final, res.final)
merged = [(c[np.triu_indices(32, 1)] > 0.999).mean() for c in cos]
plt.plot(betas, merged, "o-")
plt.xlabel("beta")
plt.ylabel("fraction of merged pairs at T = 10")
plt.title(f"n = 32, d = 8 ({res.summary['backend']})")
plt.savefig("phase_diagram.png", dpi=120)
print("wrote phase_diagram.png")
