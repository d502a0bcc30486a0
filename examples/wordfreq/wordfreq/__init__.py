"""wordfreq: a tiny multi-process word counter, used to demonstrate mpcov."""
