// Keyboard shortcuts for agents (j/k, r, e, a, /, ?): filled in by the shortcuts work.
