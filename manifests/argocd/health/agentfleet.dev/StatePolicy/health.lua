-- Argo CD health check for agentfleet.dev/v1alpha1 StatePolicy.
--
-- Argo CD runs this in gopher-lua (Lua 5.1) with only the base, table and package libraries for
-- checks configured in argocd-cm: there is no `string` or `math` library, so messages are built
-- with `..` and tostring only. `obj` is the live object as a global table.
--
-- A StatePolicy has no rollout: its health is the Ready condition, overridden by the kstatus
-- conditions Stalled and Reconciling when the operator sets them. The first rule that matches
-- decides, most urgent first.
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

-- Argo CD's own engine reports this before any script runs; repeated here so the check is
-- complete on its own (and in its tests).
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

-- Status written for an older spec describes something that is no longer asked for: wait
-- instead of reporting a stale Healthy right after a sync.
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

local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "The operator cannot make progress")
  return hs
end

local reconciling = findCondition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

local ready = findCondition(conditions, "Ready")
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

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the Ready condition")
return hs
