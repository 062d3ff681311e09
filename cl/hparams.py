"""The names a continual-learning config chooses from, in one jax-free place: config files, the
results-table script and `cl.methods` read them from here (loading a config file imports no jax)."""

BASELINES = ('finetune', 'joint', 'ewc', 'online_ewc', 'si', 'replay')
BAYES_DUALITY = ('vcl', 'fromp', 'fromp_l2', 'kpriors', 'ewc_fr_replay')
METHODS = BASELINES + BAYES_DUALITY
