# OpenSTA: power of one synthesized unit with per-net switching activity from gate-level simulation.
#
# The caller (rtl/src/sta.rs) prepends the settings: qb_liberty, qb_netlist, qb_top, qb_clock,
# qb_period_ns and the array qb_activity(<net or pin name>) = {toggles_per_cycle duty}.
# This OpenSTA has no read_vcd/read_saif and its `set_power_activity -pins` is broken, so every
# pin gets its activity through sta::set_power_pin_activity, which takes effect after one power
# computation. Clock-net pins keep the activity OpenSTA derives from the clock (2 per period).
read_liberty $qb_liberty
read_verilog $qb_netlist
link_design $qb_top
create_clock -name qb_clk -period $qb_period_ns [get_ports $qb_clock]
sta::design_power [sta::cmd_corner]
# In a flat netlist the clock port's net has the port's name.
set qb_clock_nets [list $qb_clock]
set qb_pins 0
set qb_missing {}
array set qb_used {}
foreach qb_net [get_nets *] {
  set qb_net_name [get_full_name $qb_net]
  if {[lsearch -exact $qb_clock_nets $qb_net_name] >= 0} { continue }
  foreach qb_pin [get_pins -of_objects $qb_net] {
    set qb_pin_name [get_full_name $qb_pin]
    if {[info exists qb_activity($qb_pin_name)]} {
      set qb_key $qb_pin_name
    } elseif {[info exists qb_activity($qb_net_name)]} {
      set qb_key $qb_net_name
    } else {
      lappend qb_missing $qb_pin_name
      continue
    }
    set qb_used($qb_key) 1
    lassign $qb_activity($qb_key) qb_toggles qb_duty
    sta::set_power_pin_activity $qb_pin $qb_toggles $qb_duty
    incr qb_pins
  }
}
puts "QBENCH annotated [llength [array names qb_used]] [array size qb_activity] $qb_pins"
puts "QBENCH missing [llength $qb_missing] [lrange $qb_missing 0 4]"
puts "QBENCH power [lrange [sta::design_power [sta::cmd_corner]] 0 3]"
