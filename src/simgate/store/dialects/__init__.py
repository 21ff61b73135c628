"""Storage that serves one vendor dialect only, under the vendor's name."""
