"""vLLM's scheduler as a service model: paged KV, a token budget with chunked prefill, and
recompute preemption (``serving.kv_admission: paged``, the default).

Semantics (vLLM V1 scheduler, ``vllm/v1/core/sched/scheduler.py``, docs "Optimization and
Tuning: Preemption, Chunked Prefill"):

* every iteration first gives each running (decoding) sequence one token of the
  ``max_num_batched_tokens`` budget; the rest goes to prefills in first-come order — first
  the requests whose prefill is already under way, then waiting ones — each taking a chunk
  of at most the remaining budget, so a long prompt is prefilled over several iterations and
  its first token comes at the end of the iteration that ran its last chunk;
* at most ``max_num_seqs`` (``serving.max_batch``) requests run (decode or prefill) at once;
* the KV cache is paged: a sequence holds exactly the tokens it has (prompt chunks computed so
  far, then one more per decoded token), counted in tokens (vLLM's 16-token blocks round
  each sequence up by < 16 tokens; not modelled). A waiting request starts only when its first
  chunk fits;
* when the decoding sequences' next tokens do not fit, the most recently started sequence is
  preempted (vLLM's default ``recompute``): its KV is freed, it goes back to the front of the
  worker's waiting queue, and when it restarts it prefills its prompt plus the tokens it had
  generated, then continues (its first token is not produced again).

Iteration time is the profile's linear form with the chunks as prefills (a chunk of ``c``
tokens after ``d`` computed ones costs ``prefill_per_token_s * c + prefill_per_token2_s *
c * (d + c)``; a whole prompt in one chunk gives the unchunked ``p`` and ``p**2`` terms).

``fast`` mode skips from one boundary to the next at which something can change (a
completion, the iteration at which the KV cache would overflow, or every iteration while
prefills run or a waiting request could start); ``exact`` schedules every boundary. Both
share all bookkeeping, so they agree to rounding (tests/test_paged.py).
"""

from __future__ import annotations

import heapq
from collections import deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sim.engine.service import SegmentClock

if TYPE_CHECKING:
    from sim.serving.profiles import Profile


#: Sort key of a decoding sequence's heap entry: its start number (start order).
_START = itemgetter(4)


def default_batched_tokens(gpu: str) -> int:
    """vLLM's default ``max_num_batched_tokens`` for its OpenAI server (``EngineArgs``,
    vLLM >= 0.8): 8192 on GPUs with at least 70 GiB of memory other than the A100, else
    2048."""
    from sim.hardware import gpu_spec

    big = gpu_spec(gpu).memory_gb >= 70 * 2**30 / 1e9 and not gpu.startswith("A100")
    return 8192 if big else 2048


class PagedLlmService(SegmentClock):
    """Continuous batching with paged KV, chunked prefill and recompute preemption."""

    def __init__(self, host: Any, worker_id: int, profile: Profile, max_seqs: int, exact: bool,
                 max_batched_tokens: int) -> None:
        self.host = host
        self.worker_id = worker_id
        self.profile = profile
        self.max_batch = max_seqs
        self.budget = max_batched_tokens
        self.exact = exact
        self.kv_capacity = profile.kv_capacity_tokens
        self.load = 0
        self.preemptions = 0
        # Requests at the worker that have not started (preempted ones at the front) and
        # those whose prefill is under way; done = tokens computed so far. The tokens to
        # prefill are the prompt, or (need) the prompt plus generated tokens after preemption.
        self.waiting: deque[int] = deque()
        self.wait_need = 0
        self.prefilling: deque[int] = deque()
        self.pf_kv = 0
        self.need: dict[int, int] = {}
        self.done: dict[int, int] = {}
        # Preempted requests: tokens still to produce, counting their recompute's token (the
        # first token is already out). Others produce host.output[rid] tokens.
        self.out_left: dict[int, int] = {}
        # Decoding sequences: K(i) = sum_p + b*i - sum_j is their KV in iteration i. Each is
        # one heap entry (last token's iteration, rid, start iteration, KV at start, start
        # number); the start number orders LIFO preemption. A preempted sequence's entry
        # stays in the heap, its start number in ``stale`` (skipped when popped): no per-rid
        # table on the hot path, and fast mode wakes at the same boundaries as it always has.
        self._starts = 0
        self.stale: set[int] = set()
        self._init_clock(host, profile)
        self.heap: list[tuple[int, int, int, int, int]] = []  # type: ignore[assignment]

    # -- admission (the gateway's view) ------------------------------------------------
    def can_accept(self, rid: int) -> bool:
        """A free sequence slot and KV room for its prompt beside everything committed."""
        if self.load >= self.max_batch:
            return False
        return self.sum_p + self.b * self.it - self.sum_j + self.pf_kv + self.wait_need \
            + self.host.prompt[rid] + 1 <= self.kv_capacity

    def fits_ever(self, rid: int) -> bool:
        """Whether the request could run to completion alone on an empty worker."""
        return self.host.prompt[rid] + self.host.output[rid] <= self.kv_capacity

    def accept(self, rid: int) -> None:
        """Queue ``rid`` at the worker; it starts at the next boundary with budget and room."""
        p = self.host.prompt[rid]
        self.waiting.append(rid)
        self.wait_need += p
        self.load += 1
        if self.settling:
            return
        if self.pending_it < 0:
            self._boundary(self.it, self._env._now)
        elif not self.exact:
            target = self.seg_it + self._next_boundary_index(self._env._now)
            if target < self.pending_it:
                self._schedule_boundary(target)

    def _start_decoding(self, rids: list[int], i: int, t_first: float) -> int:
        """Requests whose prefill ends in iteration ``i`` (its end at ``t_first``) start decoding:
        a first token (none for a recompute), a finish iteration, their KV in the running sums.
        Returns the KV tokens they hold."""
        host = self.host
        need, prompt, output, out_left = self.need, host.prompt, host.output, self.out_left
        heap, push, first_token = self.heap, heapq.heappush, host.first_token
        seq = self._starts
        total = 0
        if not need and not out_left:  # nothing preempted: every request is a first start
            for rid in rids:
                kv = prompt[rid]
                first_token(rid, t_first)
                push(heap, (i + output[rid] - 1, rid, i, kv, seq))
                seq += 1
                total += kv
        else:
            for rid in rids:
                kv = need.pop(rid) if need and rid in need else prompt[rid]
                if out_left and rid in out_left:
                    fin = i + out_left.pop(rid) - 1  # a recompute: no new first token
                else:
                    fin = i + output[rid] - 1
                    first_token(rid, t_first)
                push(heap, (fin, rid, i, kv, seq))
                seq += 1
                total += kv
        self._starts = seq
        self.sum_p += total
        self.sum_j += i * len(rids)
        self.b += len(rids)
        return total

    def _preempt(self, i: int) -> None:
        """Free the newest decoding sequences until the next tokens fit (recompute)."""
        cap = self.kv_capacity
        newest = self._running()  # start order; the last started goes first
        while self.b and self.sum_p + self.b * i - self.sum_j + self.pf_kv > cap:
            fin, rid, j0, kv0, seq = newest.pop()
            self.stale.add(seq)
            self.sum_p -= kv0
            self.sum_j -= j0
            self.b -= 1
            self.need[rid] = kv0 + (i - j0)  # prompt plus every token generated so far
            self.out_left[rid] = fin - i + 1
            self.waiting.appendleft(rid)
            self.wait_need += self.need[rid]
            self.preemptions += 1

    def _running(self) -> list[tuple[int, int, int, int, int]]:
        """The live heap entries of the decoding sequences, in start order."""
        stale = self.stale
        return sorted((e for e in self.heap if e[4] not in stale), key=_START)

    def _need(self, rid: int) -> int:
        """Tokens ``rid`` must prefill: its prompt, plus generated tokens after preemption."""
        need = self.need
        return need[rid] if need and rid in need else self.host.prompt[rid]

    def _boundary(self, i: int, t: float) -> None:
        """Iterations up to ``i - 1`` are done at ``t``; plan iteration ``i`` and start it."""
        self.pending_it = -1
        self.it = i
        heap = self.heap
        if heap and heap[0][0] < i:
            done: list[int] = []
            kv_done = j_done = 0
            pop, stale = heapq.heappop, self.stale
            while heap and heap[0][0] < i:
                _, rid, j0, kv0, seq = pop(heap)
                if stale and seq in stale:
                    stale.discard(seq)  # a preempted sequence's old entry
                    continue
                kv_done += kv0
                j_done += j0
                done.append(rid)
            if done:
                self.sum_p -= kv_done
                self.sum_j -= j_done
                self.b -= len(done)
                self.load -= len(done)
                self.settling = True
                self.host.completed(self.worker_id, done, t)
                self.settling = False
        cap = self.kv_capacity
        kv_i = self.sum_p + self.b * i - self.sum_j
        if kv_i + self.pf_kv > cap:
            self._preempt(i)
            kv_i = self.sum_p + self.b * i - self.sum_j
        b = self.b
        decode = self._a + self._per_seq * b + self._c * kv_i
        first = decode
        waiting = self.waiting
        if self.prefilling:
            first += self._plan_prefills(i, t, b, kv_i, decode)
            b = self.b
        elif waiting:
            # Common case first: whole prompts that fit the budget and the cache join now
            # (no chunking); anything else goes through the general planner.
            prompt = self.host.prompt
            need = self.need
            room = cap - kv_i
            budget = self.budget - b
            slots = self.max_batch - b
            pf = 0.0
            joined: list[int] = []
            pf1, pf2 = self._pf1, self._pf2
            while waiting and slots > 0:
                rid = waiting[0]
                n = need[rid] if need and rid in need else prompt[rid]
                if n > budget or n > room:
                    if budget < n <= room or budget <= room < n:
                        # Too long for what is left of the budget: its first chunk runs
                        # now, the rest in the next iterations (it ends the budget).
                        c = budget
                        if c > 0:
                            waiting.popleft()
                            self.wait_need -= n
                            self.prefilling.append(rid)
                            self.done[rid] = c
                            self.pf_kv += c
                            pf += pf1 * c + pf2 * c * c
                    break
                waiting.popleft()
                pf += pf1 * n + pf2 * n * n
                budget -= n
                room -= n
                slots -= 1
                joined.append(rid)
            if joined:
                # The joiners leave the queue's token count: the budget they spent.
                self.wait_need -= self.budget - b - budget
            if pf:
                first += self._pf0 + pf
            if joined:
                self._start_decoding(joined, i, t + first)
                b = self.b
        if not b and not self.prefilling:
            return  # idle (a waiting request always fits an empty worker)
        self.seg_t, self.seg_it, self.seg_first = t, i, first
        kv_next = self.sum_p + b * (i + 1) - self.sum_j
        self.seg_d1 = self._a + self._per_seq * b + self._c * kv_next
        self.seg_step = self._c * b
        if self.exact or self.prefilling:
            nxt = i + 1
        else:
            nxt = heap[0][0] + 1
            # Preemption comes first if the decode tokens overflow the KV cache before nxt:
            # then nxt is the first iteration that overflows (> i, as iteration i fits).
            base = self.sum_p - self.sum_j
            if base + b * (nxt - 1) > cap:
                nxt = (cap - base) // b + 1
            if waiting and b < self.max_batch and kv_next + min(
                    self._need(waiting[0]), self.budget - b) <= cap:
                nxt = i + 1  # a waiting request may start at the next boundary
        self._schedule_boundary(nxt)

    def _plan_prefills(self, i: int, t: float, b: int, kv_i: int, decode: float) -> float:
        """Give iteration ``i``'s token budget to prefills; returns their added time.

        Requests whose last chunk runs in ``i`` join the decoding batch (first token at the
        end of ``i``)."""
        cap = self.kv_capacity
        used = kv_i + self.pf_kv
        budget = self.budget - b
        pf = 0.0
        finished: list[int] = []
        need, done = self.need, self.done
        prompt = self.host.prompt
        pf1, pf2 = self._pf1, self._pf2
        prefilling = self.prefilling
        # Prefills under way first (first come, first served), then waiting requests.
        for rid in prefilling:
            if budget <= 0 or used >= cap:
                break
            d = done[rid]
            n = need[rid] if need and rid in need else prompt[rid]
            c = min(n - d, budget, cap - used)
            pf += pf1 * c + pf2 * c * (d + c)
            done[rid] = d + c
            used += c
            self.pf_kv += c
            budget -= c
            if d + c == n:
                finished.append(rid)
        for rid in finished:
            prefilling.remove(rid)
            del done[rid]
        waiting = self.waiting
        while waiting and budget > 0 and b + len(prefilling) + len(finished) < self.max_batch:
            rid = waiting[0]
            n = need[rid] if need and rid in need else prompt[rid]
            c = n if n < budget else budget
            if used + c > cap:
                break  # its first chunk does not fit: wait for room
            waiting.popleft()
            self.wait_need -= n
            pf += pf1 * c + pf2 * c * c
            used += c
            self.pf_kv += c
            budget -= c
            if c == n:
                finished.append(rid)
            else:
                prefilling.append(rid)
                done[rid] = c
        if not pf and not finished:
            return 0.0
        added = self._pf0 + pf
        if finished:
            self.pf_kv -= self._start_decoding(finished, i, t + decode + added)
        return added

    def abort(self) -> list[int]:
        """Drop every request (worker lost) and return their ids; the worker goes idle."""
        rids = list(self.waiting) + list(self.prefilling) + \
            [e[1] for e in self._running()]
        version, preemptions = self.version, self.preemptions
        self.__init__(self.host, self.worker_id, self.profile, self.max_batch,  # type: ignore[misc]
                      self.exact, self.budget)
        self.version, self.preemptions = version + 1, preemptions  # stale events stay stale
        return rids

    def rated_tokens_per_s(self) -> float:
        """The profile's rated decode throughput at this worker's max_batch (KV-capped)."""
        return self.profile.rated_tokens_per_s(self.max_batch)
