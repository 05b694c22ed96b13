-- Argo CD health check for agentfleet.dev/v1alpha1 Agent.
--
-- Argo CD runs this in gopher-lua (Lua 5.1) with only the base, table and package libraries for
-- checks configured in argocd-cm: there is no `string` or `math` library, so messages are built
-- with `..` and tostring only. `obj` is the live object as a global table.
--
-- The first rule that matches decides. Rules run from "the status cannot be trusted yet"
-- (deletion, unobserved generation) through "something is wrong" (Stalled, rolled back) to
-- "waiting on a person or the operator" (paused, reconciling) and finally Ready, because Argo CD
-- shows one status and the most urgent one must win.
local hs = {}

-- Conditions are a list keyed by type (metav1.Condition); nil when absent.
local function findCondition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

-- The text Argo CD shows: the condition's message, else its reason, else a fallback.
local function describe(condition, fallback)
  if condition ~= nil then
    if condition.message ~= nil and condition.message ~= "" then
      return condition.message
    end
    if condition.reason ~= nil and condition.reason ~= "" then
      return condition.reason
    end
  end
  return fallback
end

local function nonEmpty(value)
  return value ~= nil and value ~= ""
end

-- Argo CD's own engine reports this before any script runs; repeated here so the check is
-- complete on its own (and in its tests).
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

-- Status written for an older spec describes something that is no longer asked for: wait
-- instead of reporting a stale Healthy right after a sync (kubectl#1414 is the same trap).
local status = obj.status
local generation = obj.metadata.generation
local observedGeneration = 0
if status ~= nil and status.observedGeneration ~= nil then
  observedGeneration = status.observedGeneration
end
if status == nil or (generation ~= nil and observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to report status"
  end
  return hs
end

local conditions = status.conditions
local rollout = status.rollout
if rollout == nil then
  rollout = {}
end

-- kstatus Stalled: the operator cannot make progress without a change from someone.
local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "The operator cannot make progress")
  return hs
end

-- An aborted canary: the stable revision still serves, but what Git asks for is not running.
local ready = findCondition(conditions, "Ready")
if ready ~= nil and ready.status == "False" and ready.reason == "RolledBack" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Canary rolled back to the stable revision")
  return hs
end
if rollout.phase == "Aborted" then
  hs.status = "Degraded"
  if nonEmpty(rollout.message) then
    hs.message = rollout.message
  else
    hs.message = "Canary aborted; the stable revision serves all traffic"
  end
  return hs
end

-- A paused canary waits for a person (`promote`) or a timer: Suspended, as Argo Rollouts does.
-- Checked before Reconciling, which the operator also sets while a canary is under way.
if rollout.phase == "Paused" or status.phase == "Paused" then
  hs.status = "Suspended"
  if nonEmpty(rollout.message) then
    hs.message = rollout.message
  elseif rollout.step ~= nil then
    hs.message = "Canary paused at step " .. tostring(rollout.step)
  else
    hs.message = "Canary paused"
  end
  return hs
end

local reconciling = findCondition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

-- A canary moving through its steps is not done even while the stable track is Ready.
if rollout.phase == "Progressing" or rollout.phase == "Promoting" then
  hs.status = "Progressing"
  if nonEmpty(rollout.message) then
    hs.message = rollout.message
  else
    hs.message = "Canary " .. rollout.phase .. " at " .. tostring(rollout.weight or 0) .. "% traffic"
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready")
  return hs
end
if ready == nil and (status.phase == "Degraded" or status.phase == "Failed") then
  hs.status = "Degraded"
  hs.message = "Agent is " .. status.phase
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the Ready condition")
return hs
