"""The project protocol on the real MNIST: baselines match published / reference mAP@all.

Database = the 60,000 training images, queries = the first 1,000 test images, relevance = same
label. Reference (ITQ, PCAH, LSH): 16 bits 0.396 / 0.266 / 0.234; 32 bits 0.425 / 0.245 / 0.280;
64 bits 0.447 / 0.212 / 0.310. LSH depends on its seed; we check it against the spread of 5 seeds.
"""

import numpy as np
import pytest

from semhash.hashing.baselines import ITQ, LSH, PCAH
from semhash.hashing.metrics import evaluate, label_relevance

REFERENCE = {16: (0.396, 0.266, 0.234), 32: (0.425, 0.245, 0.280), 64: (0.447, 0.212, 0.310)}


def map_all(hasher, db, q):
    rel = label_relevance(q.labels, db.labels)
    return evaluate(hasher.encode(q), hasher.encode(db), rel).map_all


@pytest.mark.mnist
@pytest.mark.parametrize("bits", sorted(REFERENCE))
def test_baselines_reproduce_the_reference_on_real_mnist(mnist, bits):
    db, q = mnist
    itq_ref, pcah_ref, lsh_ref = REFERENCE[bits]
    assert map_all(ITQ(bits).fit(db), db, q) == pytest.approx(itq_ref, abs=0.02)
    assert map_all(PCAH(bits).fit(db), db, q) == pytest.approx(pcah_ref, abs=0.02)
    lsh = [map_all(LSH(bits, seed=s).fit(db), db, q) for s in range(5)]
    spread = max(0.02, 2 * float(np.std(lsh)))
    assert float(np.mean(lsh)) == pytest.approx(lsh_ref, abs=spread), lsh
