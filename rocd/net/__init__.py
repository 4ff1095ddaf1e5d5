"""The wire, in two protocols that share nothing but this package:

- `rocd.net.roc`: the real-time audio transport, wire-compatible with Roc Toolkit 0.4
  (RTP/L16, FECFRAME RS8M and LDPC-Staircase, RTCP/XR): sans-IO codecs and pipelines,
  with thin Trio shells that own the UDP sockets.
- `rocd.net.signalling`: the peer-to-peer control protocol between rocd instances:
  sans-IO messages over bytes, with a thin Trio shell over ZeroMQ.
"""
