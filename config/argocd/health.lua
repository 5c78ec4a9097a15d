-- Argo CD health check for the flagops.dev kinds FeatureFlag, UserFlagOverride and
-- DeviceFlagOverride (flagops: docs/gitops.md), one script for the three, by the rules
-- kstatus (Flux) applies to the status that the flagops manager writes:
--   generation not observed yet -> Progressing
--   Stalled=True                -> Degraded
--   Reconciling=True            -> Progressing
--   Ready=True                  -> Healthy
--   otherwise                   -> Progressing
-- It uses only the Lua base library.
local hs = { status = "Progressing", message = "" }
if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "The object is being deleted"
  return hs
end
local generation = obj.metadata.generation
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end
if generation ~= nil and observed ~= generation then
  hs.message = "Waiting for the flagops manager to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Stalled" and c.status == "True" then
      hs.status = "Degraded"
      hs.message = c.message
      return hs
    end
    if c.type == "Reconciling" and c.status == "True" then
      hs.message = c.message
      return hs
    end
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  hs.message = "Waiting for the flagops manager to report Ready"
  return hs
end
hs.message = ready.message
if ready.status == "True" then
  hs.status = "Healthy"
end
return hs
