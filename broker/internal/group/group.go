package group

// One group: its members, its state machine and its timers (the package
// doc has the states and the timers).

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type groupState int8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

var groupStateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s groupState) String() string { return groupStateNames[s] }

// consumerProtocolType is the protocol type of Kafka's consumers, whose
// member metadata (kmsg.ConsumerMemberMetadata) names their topics.
const consumerProtocolType = "consumer"

// newMemberJoinTimeout bounds how long a new member may wait in its first
// JoinGroup: it has no member id to heartbeat with, and a client that gave
// up and retried would otherwise leave a defunct member behind.
const newMemberJoinTimeout = 5 * time.Minute

// protocol is one assignment protocol a member supports, with its metadata.
type protocol struct {
	name     string
	metadata []byte
}

// joinResult is the answer to a JoinGroup request.
type joinResult struct {
	code         int16
	memberID     string
	generation   int32
	protocolType *string // nil on errors
	protocol     *string // nil on errors
	leader       string
	members      []kmsg.JoinGroupResponseMember // the leader's answer only
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

// syncResult is the answer to a SyncGroup request.
type syncResult struct {
	code         int16
	protocolType *string
	protocol     *string
	assignment   []byte
}

func syncError(code int16) syncResult { return syncResult{code: code, assignment: []byte{}} }

// member is one member of a group.
type member struct {
	id               string
	instanceID       string // "" for a dynamic member
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []protocol
	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	assignment       []byte // never nil
	// isNew is set until the member's first rebalance completes.
	isNew bool
	// join and sync are set while a JoinGroup or SyncGroup request of the
	// member waits for its answer.
	join  chan joinResult
	sync  chan syncResult
	timer *time.Timer // session
}

// metadata returns the member's metadata for the named protocol.
func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return []byte{}
}

// matches reports whether protocols are exactly the member's, in order.
func (m *member) matches(protocols []protocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b protocol) bool {
		return a.name == b.name && string(a.metadata) == string(b.metadata)
	})
}

// committedOffset is one committed offset of a group.
type committedOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // ms since the epoch
	expireTime  int64 // ms since the epoch; -1: offsets.retention.minutes applies
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED and not
// used to join yet.
type pendingMember struct{ timer *time.Timer }

// group is one consumer group. Every field is guarded by mu.
type group struct {
	c  *Coordinator
	id string

	mu           sync.Mutex
	state        groupState
	stateTime    time.Time
	protocolType string // "" until a member joins (or for offsets-only groups)
	protocol     string // chosen protocol; "" when Empty
	generation   int32
	leader       string
	members      map[string]*member
	order        []*member         // members in join order
	static       map[string]string // instance id → member id
	pending      map[string]*pendingMember
	pendingSync  map[string]bool // members that have not sent SyncGroup for this generation
	awaitingJoin int             // members with a waiting JoinGroup
	// newMemberAdded extends the initial rebalance delay of a new group.
	newMemberAdded bool

	joinTimer        *time.Timer
	initialJoin      bool          // the join timer is the initial delay
	initialRemaining time.Duration // what is left of the initial delay's bound
	syncTimer        *time.Timer

	// subscribed is the set of topics the members of a consumer group
	// subscribe to, computed at each new generation; nil when unknown.
	subscribed map[string]bool
	offsets    map[string]map[int32]*committedOffset
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:           c,
		id:          id,
		stateTime:   c.now(),
		members:     map[string]*member{},
		static:      map[string]string{},
		pending:     map[string]*pendingMember{},
		pendingSync: map[string]bool{},
		offsets:     map[string]map[int32]*committedOffset{},
	}
}

// after arms *slot to run fn under g.mu after d, replacing (and stopping)
// the timer there. A timer that fires after it was replaced or stopped
// finds *slot no longer pointing at it and does nothing. Called with g.mu
// held.
func (g *group) after(slot **time.Timer, d time.Duration, fn func()) {
	stopTimer(slot)
	if g.c.stopped.Load() {
		return // shut down: no timer outlives the coordinator
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if *slot != t {
			return
		}
		*slot = nil
		fn()
	})
	*slot = t
}

// stopTimer disarms *slot.
func stopTimer(slot **time.Timer) {
	if *slot != nil {
		(*slot).Stop()
		*slot = nil
	}
}

// stopTimers disarms every timer of the group (shutdown).
func (g *group) stopTimers() {
	stopTimer(&g.joinTimer)
	stopTimer(&g.syncTimer)
	for _, m := range g.order {
		stopTimer(&m.timer)
	}
	for _, p := range g.pending {
		stopTimer(&p.timer)
	}
}

func (g *group) transition(s groupState) {
	g.state = s
	g.stateTime = g.c.now()
}

func (g *group) isLeader(id string) bool { return g.leader != "" && g.leader == id }

func (g *group) hasOffsets() bool { return len(g.offsets) > 0 }

// canRebalance reports whether a change of membership starts a rebalance.
func (g *group) canRebalance() bool {
	return g.state == groupStable || g.state == groupCompletingRebalance || g.state == groupEmpty
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.order {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// supportsProtocols reports whether a member with this protocol type and
// these protocols may join: any non-empty offer to an Empty group, else
// the group's protocol type and at least one protocol every member has.
func (g *group) supportsProtocols(protocolType string, protocols []protocol) bool {
	if g.state == groupEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportCount(p.name) == len(g.members) {
			return true
		}
	}
	return false
}

func (g *group) supportCount(name string) int {
	n := 0
	for _, m := range g.order {
		for _, p := range m.protocols {
			if p.name == name {
				n++
				break
			}
		}
	}
	return n
}

// selectProtocol picks the protocol of the next generation: among the
// protocols every member supports, each member votes for the first in its
// own order of preference; most votes wins, ties going to the first
// member's preference.
func (g *group) selectProtocol() string {
	if len(g.order) == 0 {
		return ""
	}
	candidates := map[string]bool{}
	for _, p := range g.order[0].protocols {
		if g.supportCount(p.name) == len(g.members) {
			candidates[p.name] = true
		}
	}
	votes := map[string]int{}
	for _, m := range g.order {
		for _, p := range m.protocols {
			if candidates[p.name] {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range g.order[0].protocols {
		if candidates[p.name] && votes[p.name] > bestVotes {
			best, bestVotes = p.name, votes[p.name]
		}
	}
	return best
}

// computeSubscribed returns the topics a consumer group's members
// subscribe to in the chosen protocol, or nil when unknown (not a consumer
// group, no protocol, or metadata that does not parse).
func (g *group) computeSubscribed() map[string]bool {
	if g.protocolType != consumerProtocolType || len(g.members) == 0 || g.protocol == "" {
		return nil
	}
	topics := map[string]bool{}
	for _, m := range g.order {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics
}

// subscribedTo reports whether the group's members consume topic; true
// when the subscription is unknown, to be safe.
func (g *group) subscribedTo(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	return g.subscribed[topic]
}

// newMemberID returns a fresh member id: the client id (the instance id
// for a static member), a dash and a random UUID, as Kafka makes them.
func newMemberID(prefix string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// add adds a member that is joining (join is its waiting request).
func (g *group) add(m *member, join chan joinResult) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	g.order = append(g.order, m)
	if g.leader == "" {
		g.leader = m.id
	}
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	g.setJoin(m, join)
}

// remove drops a member (its waiting requests must have been answered)
// or a pending member id.
func (g *group) remove(id string) {
	g.dropPending(id)
	delete(g.pendingSync, id)
	m, ok := g.members[id]
	if !ok {
		return
	}
	g.answerJoin(m, joinError("", kerr.UnknownMemberID.Code))
	g.answerSync(m, syncError(kerr.UnknownMemberID.Code))
	stopTimer(&m.timer)
	delete(g.members, id)
	g.order = slices.DeleteFunc(g.order, func(o *member) bool { return o == m })
	if m.instanceID != "" && g.static[m.instanceID] == id {
		delete(g.static, m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0].id
		}
	}
}

// setJoin records the member's waiting JoinGroup (nil: none). A request
// it replaces is answered REBALANCE_IN_PROGRESS, so it does not wait on.
func (g *group) setJoin(m *member, join chan joinResult) {
	if m.join != nil {
		g.answerJoin(m, joinError(m.id, kerr.RebalanceInProgress.Code))
	}
	if join != nil {
		m.join = join
		g.awaitingJoin++
	}
}

// answerJoin answers the member's waiting JoinGroup, if any.
func (g *group) answerJoin(m *member, res joinResult) bool {
	if m.join == nil {
		return false
	}
	m.join <- res // buffered for exactly this answer
	m.join = nil
	g.awaitingJoin--
	return true
}

// setSync records the member's waiting SyncGroup.
func (g *group) setSync(m *member, sync chan syncResult) {
	g.answerSync(m, syncError(kerr.RebalanceInProgress.Code))
	m.sync = sync
}

// answerSync answers the member's waiting SyncGroup, if any.
func (g *group) answerSync(m *member, res syncResult) bool {
	if m.sync == nil {
		return false
	}
	m.sync <- res
	m.sync = nil
	return true
}

// heartbeat restarts the member's session timer.
func (g *group) heartbeat(m *member) { g.expireAfter(m, m.sessionTimeout) }

// expireAfter arms the member's session timer for d.
func (g *group) expireAfter(m *member, d time.Duration) {
	g.after(&m.timer, d, func() { g.sessionExpired(m) })
}

func (g *group) sessionExpired(m *member) {
	if g.state == groupDead || g.members[m.id] != m {
		return
	}
	if !m.isNew && (m.join != nil || m.sync != nil) {
		// Waiting in a rebalance counts as alive; the timer is armed
		// again when the request is answered.
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeAndUpdate(m)
}

// removeAndUpdate removes a member and moves the group on: a rebalance
// if it was Stable or CompletingRebalance, the end of the join phase if
// everyone else has joined.
func (g *group) removeAndUpdate(m *member) {
	g.remove(m.id)
	switch g.state {
	case groupStable, groupCompletingRebalance:
		g.maybePrepareRebalance()
	case groupPreparingRebalance:
		g.tryCompleteJoin()
	}
}

// dropPending forgets a pending member id (it joined, or left).
func (g *group) dropPending(id string) {
	if p, ok := g.pending[id]; ok {
		stopTimer(&p.timer)
		delete(g.pending, id)
	}
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED; it
// lapses after the session timeout unless used to join.
func (g *group) addPending(id string, sessionTimeout time.Duration) {
	p := &pendingMember{}
	g.pending[id] = p
	g.after(&p.timer, sessionTimeout, func() {
		if g.pending[id] != p {
			return
		}
		delete(g.pending, id)
		if g.state == groupPreparingRebalance {
			g.tryCompleteJoin()
		}
	})
}

func (g *group) maybePrepareRebalance() {
	if g.canRebalance() {
		g.prepareRebalance()
	}
}

// prepareRebalance starts a rebalance: members waiting in SyncGroup are
// told REBALANCE_IN_PROGRESS and the join timer is armed.
func (g *group) prepareRebalance() {
	if g.state == groupCompletingRebalance {
		g.resetAndPropagate(kerr.RebalanceInProgress.Code)
	}
	clear(g.pendingSync)
	stopTimer(&g.syncTimer)
	if g.state == groupEmpty {
		delay := g.c.cfg.GroupInitialRebalanceDelayMs
		g.initialJoin = true
		g.initialRemaining = max(g.rebalanceTimeout()-delay, 0)
		g.transition(groupPreparingRebalance)
		g.after(&g.joinTimer, delay, g.initialDelayExpired)
		return
	}
	g.initialJoin = false
	g.transition(groupPreparingRebalance)
	g.after(&g.joinTimer, g.rebalanceTimeout(), g.completeJoin)
	g.tryCompleteJoin()
}

// initialDelayExpired extends the initial delay while members keep
// joining, up to the rebalance timeout, then completes the join.
func (g *group) initialDelayExpired() {
	if g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		delay := min(g.c.cfg.GroupInitialRebalanceDelayMs, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-g.c.cfg.GroupInitialRebalanceDelayMs, 0)
		g.after(&g.joinTimer, delay, g.initialDelayExpired)
		return
	}
	g.completeJoin()
}

// tryCompleteJoin completes the join phase if every member and pending
// member id has joined (never during the initial delay).
func (g *group) tryCompleteJoin() {
	if g.state != groupPreparingRebalance || g.initialJoin {
		return
	}
	if g.awaitingJoin == len(g.members) && len(g.pending) == 0 {
		stopTimer(&g.joinTimer)
		g.completeJoin()
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed, a new generation begins, and every waiting JoinGroup is
// answered (the leader's with every member's metadata).
func (g *group) completeJoin() {
	if g.state != groupPreparingRebalance {
		return
	}
	stopTimer(&g.joinTimer)
	g.initialJoin = false
	for _, m := range slices.Clone(g.order) {
		if m.join == nil && m.instanceID == "" {
			g.remove(m.id)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Nobody rejoined (only static members remain, waiting for
		// their sessions): wait another rebalance timeout.
		g.c.log.Warn("group rebalance incomplete: no member rejoined", "group", g.id)
		g.after(&g.joinTimer, g.rebalanceTimeout(), g.completeJoin)
		return
	}
	g.generation++
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocol = ""
		g.subscribed = nil
		g.transition(groupEmpty)
		g.c.log.Info("group is empty", "group", g.id, "generation", g.generation)
		g.c.writeInBackground(g, []Record{{Group: ptr(g.metaRecord(nil))}})
		return
	}
	g.protocol = g.selectProtocol()
	g.subscribed = g.computeSubscribed()
	g.transition(groupCompletingRebalance)
	g.c.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "members", len(g.members), "protocol", g.protocol)
	all := g.memberList()
	for _, m := range g.order {
		res := g.joinSuccess(m.id, g.leader)
		if g.isLeader(m.id) {
			res.members = all
		}
		g.answerJoin(m, res)
		g.heartbeat(m)
		m.isNew = false
		g.pendingSync[m.id] = true
	}
	gen := g.generation
	g.after(&g.syncTimer, g.rebalanceTimeout(), func() { g.syncExpired(gen) })
}

// memberList is the leader's JoinGroup answer: every member with its
// metadata for the chosen protocol.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	all := make([]kmsg.JoinGroupResponseMember, 0, len(g.order))
	for _, m := range g.order {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		if m.instanceID != "" {
			jm.InstanceID = ptr(m.instanceID)
		}
		jm.ProtocolMetadata = m.metadata(g.protocol)
		all = append(all, jm)
	}
	return all
}

// joinSuccess is a successful JoinGroup answer for the current generation.
func (g *group) joinSuccess(memberID, leader string) joinResult {
	return joinResult{
		memberID:     memberID,
		generation:   g.generation,
		protocolType: ptr(g.protocolType),
		protocol:     ptr(g.protocol),
		leader:       leader,
	}
}

// electJoinedLeader keeps the leader if it rejoined, else makes the first
// member that rejoined the leader; false if none did.
func (g *group) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.order {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// synced records that the member sent SyncGroup for this generation; the
// sync timer is disarmed once every member has.
func (g *group) synced(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		stopTimer(&g.syncTimer)
	}
}

// syncExpired removes the members of generation gen that never sent
// SyncGroup, and rebalances without them.
func (g *group) syncExpired(gen int32) {
	if gen != g.generation || (g.state != groupCompletingRebalance && g.state != groupStable) || len(g.pendingSync) == 0 {
		return
	}
	for id := range g.pendingSync {
		g.c.log.Info("group member did not sync in time", "group", g.id, "member", id)
		g.remove(id)
	}
	g.prepareRebalance()
}

// resetAndPropagate clears the assignments and answers every waiting
// SyncGroup with code.
func (g *group) resetAndPropagate(code int16) {
	for _, m := range g.order {
		m.assignment = []byte{}
		if g.answerSync(m, syncError(code)) {
			g.heartbeat(m)
		}
	}
}

// setAndPropagate installs the leader's assignment and answers every
// waiting SyncGroup with its member's part.
func (g *group) setAndPropagate(assignment map[string][]byte) {
	for _, m := range g.order {
		m.assignment = assignment[m.id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
		if g.answerSync(m, syncResult{protocolType: ptr(g.protocolType), protocol: ptr(g.protocol), assignment: m.assignment}) {
			g.heartbeat(m)
		}
	}
}

// replaceStatic gives the static member known by instance id the member
// id newID, fencing requests still waiting under its old id.
func (g *group) replaceStatic(instanceID, oldID, newID string) *member {
	m := g.members[oldID]
	g.answerJoin(m, joinError(oldID, kerr.FencedInstanceID.Code))
	g.answerSync(m, syncError(kerr.FencedInstanceID.Code))
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	g.static[instanceID] = newID
	return m
}

// metaRecord is the group's membership as persisted; assignment, when not
// nil, replaces the members' current assignments.
func (g *group) metaRecord(assignment map[string][]byte) GroupRecord {
	rec := GroupRecord{
		Group:          g.id,
		ProtocolType:   g.protocolType,
		Generation:     g.generation,
		Protocol:       g.protocol,
		Leader:         g.leader,
		StateTimestamp: g.stateTime.UnixMilli(),
	}
	for _, m := range g.order {
		a := m.assignment
		if assignment != nil {
			a = assignment[m.id]
		}
		if a == nil {
			a = []byte{}
		}
		rec.Members = append(rec.Members, MemberRecord{
			MemberID:         m.id,
			InstanceID:       m.instanceID,
			ClientID:         m.clientID,
			ClientHost:       m.clientHost,
			RebalanceTimeout: int32(m.rebalanceTimeout.Milliseconds()),
			SessionTimeout:   int32(m.sessionTimeout.Milliseconds()),
			Subscription:     m.metadata(g.protocol),
			Assignment:       a,
		})
	}
	return rec
}

// removeOffsets removes the offsets of the given partitions (all when
// all is set) from memory and returns their tombstones.
func (g *group) removeOffsets(all bool, topics map[string][]int32) []Record {
	var recs []Record
	drop := func(topic string, p int32) {
		if _, ok := g.offsets[topic][p]; !ok {
			return
		}
		delete(g.offsets[topic], p)
		if len(g.offsets[topic]) == 0 {
			delete(g.offsets, topic)
		}
		recs = append(recs, Record{Offset: &OffsetRecord{Group: g.id, Topic: topic, Partition: p, Delete: true}})
	}
	if all {
		for _, topic := range sortedKeys(g.offsets) {
			for _, p := range sortedKeys(g.offsets[topic]) {
				drop(topic, p)
			}
		}
		return recs
	}
	for topic, ps := range topics {
		for _, p := range ps {
			drop(topic, p)
		}
	}
	return recs
}

func sortedKeys[K interface{ ~string | ~int32 }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }
