{
  "targets": [
    {
      "target_name": "picket_bpf",
      "sources": ["picket_bpf.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-O2"],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
