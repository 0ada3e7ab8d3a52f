#!/usr/bin/env python3
"""Drive an interactive command on a real pseudo-terminal, like a person at a keyboard.

usage: pty-drive.py TIMEOUT EXPECT1 SEND1 [EXPECT2 SEND2 ...] -- COMMAND [ARGS...]
Waits for each EXPECT (a regular expression over everything printed so far), then types SEND
(\\r is Enter). Prints the whole transcript; exits with the command's exit code (124 on timeout).
"""
import os, pty, re, select, sys, time

args = sys.argv[1:]
sep = args.index('--')
timeout = float(args[0])
pairs = args[1:sep]
cmd = args[sep + 1:]
script = [(re.compile(pairs[i]), pairs[i + 1].encode().decode('unicode_escape')) for i in range(0, len(pairs), 2)]

pid, fd = pty.fork()
if pid == 0:
    os.environ['TERM'] = 'xterm'
    os.execvp(cmd[0], cmd)

out = b''
deadline = time.time() + timeout
step = 0
status = None
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if fd in r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            break
        out += data
    if step < len(script) and script[step][0].search(out.decode(errors='replace')):
        time.sleep(0.2)
        os.write(fd, script[step][1].encode())
        step += 1
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
sys.stdout.write(out.decode(errors='replace'))
if status is None:
    try:
        _, status = os.waitpid(pid, 0) if time.time() < deadline else (0, None)
    except ChildProcessError:
        status = None
if status is None:
    os.kill(pid, 9)
    sys.exit(124)
sys.exit(os.waitstatus_to_exitcode(status))
