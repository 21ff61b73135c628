"""Line drivers: they move bytes and timers; everything else happens in dispatch/ and services/."""
