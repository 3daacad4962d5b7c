"""PyTorch twins of the zoo's models that have no same-named torch module: the same architecture, parameter
names and initialisation, so that a benchmark trains the same network in both libraries, and a parity test
(``tests/models``) loads one's state dict into the other and compares outputs and gradients - the twin a
benchmark times is the twin the tests hold equal."""
