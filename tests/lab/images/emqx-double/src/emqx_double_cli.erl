%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the client side of
%% `emqx_ctl`, run in a hidden `remsh_maint_*` node: connect to the broker
%% node over distribution, run the command there, print, exit with its code.
-module(emqx_double_cli).

-export([main/0]).

main() ->
    [NodeStr | Args] = init:get_plain_arguments(),
    Node = list_to_atom(NodeStr),
    Code = case net_adm:ping(Node) of
               pang ->
                   io:format(standard_error, "Node ~p not responding to pings.~n", [Node]),
                   1;
               pong ->
                   case rpc:call(Node, emqx_double_ctl, run, [Args], infinity) of
                       {Out, C} when is_integer(C) -> io:put_chars(Out), C;
                       {badrpc, R} ->
                           io:format(standard_error, "RPC to ~p failed: ~p~n", [Node, R]),
                           1
                   end
           end,
    erlang:halt(Code, [{flush, true}]).
