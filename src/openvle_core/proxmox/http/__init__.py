"""The HTTP/1.1 keep-alive stack under the Proxmox client: one connection (`connection`),
the pool behind httpx's transport seam (`pool`), Happy Eyeballs connects (`dial`)."""
