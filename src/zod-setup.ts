// zod's global settings, loaded before any command module defines its schemas (they read them then).
import { z } from 'zod';

// Each schema parses a few times per run: zod's compiled fast path (a new Function per object
// schema) costs more to build than it saves here (bench/scale.mjs: list of 20 clusters).
z.config({ jitless: true });
